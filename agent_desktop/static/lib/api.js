// fetch() for our JSON API: sends the session's CSRF token on every request that changes
// something, asks for messages in the UI language, and turns every refusal into an ApiError
// carrying the server's code, message, field problems and Retry-After.

import { currentLanguage, t } from "./i18n.js";

const SAFE_METHODS = new Set(["GET", "HEAD"]);

let csrfToken = null;
let unauthenticatedHandler = null;

export function setCsrfToken(token) {
  csrfToken = token || null;
}

/** What to do when the session is gone (pages go back to the login page). */
export function onUnauthenticated(handler) {
  unauthenticatedHandler = handler;
}

export class ApiError extends Error {
  constructor(status, code, message, { errors = [], retryAfter = null, body = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.errors = Array.isArray(errors) ? errors : [];
    this.retryAfter = retryAfter;
    this.body = body;
  }
}

function retryAfterSeconds(response) {
  const value = response.headers.get("Retry-After");
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, Math.ceil(seconds));
  const when = Date.parse(value); // an HTTP date is allowed too
  return Number.isNaN(when) ? null : Math.max(0, Math.ceil((when - Date.now()) / 1000));
}

async function readBody(response) {
  if (response.status === 204) return null;
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null; // a proxy's HTML error page: the status says enough
  }
}

/** One request; `keepalive` lets it outlive the page (a save sent while the page closes). */
export async function request(method, path, body = undefined, { keepalive = false } = {}) {
  const headers = { Accept: "application/json", "Accept-Language": currentLanguage() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (!SAFE_METHODS.has(method) && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      keepalive,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new ApiError(0, "network", t("error.network"), { body: String(error) });
  }
  const doc = await readBody(response);
  if (response.ok) return doc;
  const error = new ApiError(
    response.status,
    (doc && doc.code) || `http_${response.status}`,
    (doc && doc.message) || t("error.http", { status: response.status }),
    { errors: doc && doc.errors, retryAfter: retryAfterSeconds(response), body: doc },
  );
  if (error.status === 401 && error.code === "unauthenticated" && unauthenticatedHandler) {
    unauthenticatedHandler(error);
  }
  throw error;
}

export const get = (path) => request("GET", path);
export const post = (path, body = {}) => request("POST", path, body);
export const patch = (path, body) => request("PATCH", path, body);
export const del = (path) => request("DELETE", path);

/**
 * What went wrong, in words for the person at the page: the server's message (in the page's
 * language) or ours for the network; anything else is a fault of the page itself, whose
 * message is for developers: it goes to the console, and the person reads a sentence.
 */
export function errorWords(error) {
  if (error instanceof ApiError) return error.message;
  console.error(error);
  return t("error.unexpected");
}

/** A problem's message in the UI language (the API sends both). */
export function problemMessage(problem) {
  if (!problem) return "";
  if (currentLanguage() === "zh-CN") return problem.message_zh || problem.message || problem.code || "";
  return problem.message_en || problem.message || problem.code || "";
}
