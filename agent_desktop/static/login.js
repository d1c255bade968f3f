// The login page: username and password, the API's refusals in words (wrong credentials,
// too many attempts with the time to wait), then agents go to their desktop and
// supervisors and admins to the wallboard.

import { errorWords, get, post } from "./lib/api.js";
import { byTestId } from "./lib/dom.js";
import { mountLanguageSwitch, onLanguageChange, preferredLanguage, setLanguage, t } from "./lib/i18n.js";
import { homeOf } from "./lib/session.js";

const form = byTestId("login-form");
const username = byTestId("login-username");
const password = byTestId("login-password");
const submit = byTestId("login-submit");
const errorBox = byTestId("login-error");

// The error is kept as a function of the language, so that switching re-words it.
let describeError = null;
let waitUntil = 0;
let waitTimer = null;

function showError(describe) {
  describeError = describe;
  errorBox.textContent = describe ? describe() : "";
  errorBox.hidden = !describe;
}

function secondsLeft() {
  return Math.max(0, Math.ceil((waitUntil - Date.now()) / 1000));
}

// After a 429 the button stays disabled and the message counts down to when trying is allowed.
function startWait(seconds) {
  waitUntil = Date.now() + seconds * 1000;
  submit.disabled = true;
  clearInterval(waitTimer);
  const tick = () => {
    const left = secondsLeft();
    if (left <= 0) {
      clearInterval(waitTimer);
      submit.disabled = false;
      showError(() => t("login.error.try_again"));
      return;
    }
    showError(() => t("login.error.rate_limited", { seconds: secondsLeft() }));
  };
  tick();
  waitTimer = setInterval(tick, 1000);
}

function explain(error) {
  if (error.code === "bad_credentials" || error.status === 401) return () => t("login.error.bad_credentials");
  if (error.code === "network") return () => t("error.network");
  const message = errorWords(error);
  return () => t("login.error.other", { message });
}

async function signIn(event) {
  event.preventDefault();
  if (!username.value.trim() || !password.value) {
    showError(() => t("login.error.missing"));
    (username.value.trim() ? password : username).focus();
    return;
  }
  submit.disabled = true;
  showError(null);
  try {
    const answer = await post("/api/session", { username: username.value.trim(), password: password.value });
    location.assign(homeOf(answer.user.role));
    return;
  } catch (error) {
    password.value = "";
    if (error.status === 429) {
      startWait(error.retryAfter ?? 60);
      return;
    }
    showError(explain(error));
    password.focus();
  }
  submit.disabled = false;
}

async function main() {
  await setLanguage(preferredLanguage());
  mountLanguageSwitch(byTestId("lang-switch"));
  onLanguageChange(() => showError(describeError));
  form.addEventListener("submit", signIn);
  document.body.classList.remove("loading");
  // Already signed in (another tab, a reload): straight to the right page.
  try {
    const session = await get("/api/session");
    if (session && session.user) location.replace(homeOf(session.user.role));
  } catch {
    // 401: not signed in, which is why we are here
  }
}

main();
