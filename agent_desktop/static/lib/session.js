// What every signed-in page does first: find the session (else back to the login page), keep
// its CSRF token for the API, send people to the page of their role, set the UI language, and
// wire the header's language switch and logout button.

import { del, get, onUnauthenticated, setCsrfToken } from "./api.js";
import { byTestId } from "./dom.js";
import { mountLanguageSwitch, preferredLanguage, setLanguage } from "./i18n.js";

export const LOGIN_PAGE = "/";

/** The page of a role: agents answer calls, supervisors and admins watch the wallboard. */
export function homeOf(role) {
  return role === "agent" ? "/desktop/" : "/wallboard/";
}

export function goToLogin() {
  location.replace(LOGIN_PAGE);
}

/**
 * Start a page for users of `roles`. Resolves to the user, or never (redirected).
 * @param {string[]} roles
 */
export async function startSignedInPage(roles) {
  onUnauthenticated(goToLogin);
  let session;
  try {
    session = await get("/api/session");
  } catch (error) {
    if (error.status === 401) {
      goToLogin();
      return new Promise(() => {});
    }
    await setLanguage(preferredLanguage());
    throw error;
  }
  const user = session.user;
  if (!roles.includes(user.role)) {
    location.replace(homeOf(user.role));
    return new Promise(() => {});
  }
  setCsrfToken(session.csrf);
  await setLanguage(preferredLanguage(user.language));
  mountLanguageSwitch(byTestId("lang-switch"));
  byTestId("logout").addEventListener("click", logout);
  document.body.classList.remove("loading");
  return user;
}

async function logout() {
  const button = byTestId("logout");
  button.disabled = true;
  try {
    await del("/api/session");
  } catch (error) {
    // 401: already gone. Anything else: the cookie is cleared by the next login anyway.
    console.warn("logout failed", error);
  }
  goToLogin();
}

/** After a live connection dropped: ask whether the session still exists (401 -> login page). */
export async function checkSession() {
  try {
    await get("/api/session");
  } catch {
    // 401 is handled by onUnauthenticated; a network error: the socket keeps retrying
  }
}
