// The agent's own state in the header: the badge, how long in it, the wrap-up countdown, and
// the buttons that change it (log in to / out of the queues, available, break with a reason).
// Beside Available, the phone's line: with a SIP phone, Available stays disabled until the
// phone is registered (Asterisk cannot ring it before), and the line says why and when the
// phone tries again; after a break "phone_offline" it says the agent may go available again.

import { errorWords, post } from "../lib/api.js";
import { byTestId, secondsSince, secondsUntil, setText, show } from "../lib/dom.js";
import { formatDuration, t, tEnum } from "../lib/i18n.js";

// Which buttons make sense in which state (the server still decides: 409 agent_state).
const ALLOWED = {
  offline: ["queue-login"],
  available: ["queue-logout", "state-break"],
  break: ["queue-logout", "state-available"],
  wrap_up: ["queue-logout", "state-available", "state-break"],
  ringing: [],
  on_call: [],
};
const BUTTONS = ["queue-login", "queue-logout", "state-available", "state-break"];
// Phone statuses in which Asterisk can ring the phone.
const READY = ["registered", "ringing", "in_call"];

export class AgentBar {
  /** @param {(state: object) => void} onState called with the desktop state an action returned */
  constructor(onState, showError) {
    this.agent = { state: "offline" };
    // {mode, status, reason, params, retryAt, endpoint}: the browser's phone and the server's view of it.
    this.phone = null;
    this.onRetry = () => {};
    this.onState = onState;
    this.showError = showError;
    this.busy = false;
    const act = (id, path, body) => byTestId(id).addEventListener("click", () => this.act(path, body()));
    act("queue-login", "/api/desktop/queues/login", () => ({}));
    act("queue-logout", "/api/desktop/queues/logout", () => ({}));
    act("state-available", "/api/desktop/state", () => ({ state: "available" }));
    act("state-break", "/api/desktop/state", () => ({ state: "break", reason: byTestId("break-reason").value }));
    byTestId("phone-retry").addEventListener("click", () => this.onRetry());
  }

  /** The phone changed (its own status, or the server's view of its endpoint). */
  setPhone(phone) {
    this.phone = phone;
    this.renderButtons();
    this.renderPhone();
  }

  phoneReady() {
    const phone = this.phone;
    return !phone || phone.mode !== "sip" || READY.includes(phone.status);
  }

  async act(path, body) {
    this.busy = true;
    this.renderButtons();
    this.showError(null);
    try {
      this.onState(await post(path, body));
    } catch (error) {
      const message = errorWords(error);
      this.showError(error.status === 409 ? () => t("desktop.error.not_now", { message }) : () => message);
    } finally {
      this.busy = false;
      this.renderButtons();
    }
  }

  render(agent) {
    this.agent = agent || { state: "offline" };
    const state = this.agent.state || "offline";
    const badge = setText("agent-state", tEnum("agent_state", state));
    badge.dataset.state = state;
    setText("agent-state-reason", this.agent.reason ? tEnum("break_reason", this.agent.reason) : "");
    this.renderButtons();
    if (this.phone) this.renderPhone(); // what the phone's line says depends on the agent's state
    this.tick();
  }

  renderButtons() {
    const allowed = ALLOWED[this.agent.state] || [];
    for (const id of BUTTONS) byTestId(id).disabled = this.busy || !allowed.includes(id);
    if (!this.phoneReady()) byTestId("state-available").disabled = true;
    byTestId("break-reason").disabled = this.busy || !allowed.includes("state-break");
  }

  /** The phone's line beside Available: its state, why, and what the agent can do. */
  renderPhone() {
    const line = show("phone-line", Boolean(this.phone && this.phone.mode === "sip"));
    if (line.hidden) return;
    const { tone, text } = this.phoneText();
    line.dataset.status = this.phone.status;
    line.dataset.tone = tone;
    setText("phone-detail", text);
    show("phone-retry", this.phone.status === "disconnected");
  }

  phoneText() {
    const phone = this.phone;
    const reason = phone.reason ? t(phone.reason, phone.params || {}) : "";
    const endpoint = phone.endpoint ? phone.endpoint.name : "";
    const pbxState = phone.endpoint ? phone.endpoint.state : null;
    const offlineBreak = this.agent.state === "break" && this.agent.reason === "phone_offline";
    const couldGoAvailable = (ALLOWED[this.agent.state] || []).includes("state-available");
    // While the phone cannot ring: what it means for the agent.
    const consequence = offlineBreak ? t("phone.detail.offline_break") : couldGoAvailable ? t("phone.detail.available_blocked") : "";
    const join = (...parts) => parts.filter(Boolean).join(" ");
    switch (phone.status) {
      case "unconfigured":
        return { tone: "bad", text: t("phone.detail.unconfigured") };
      case "error":
        return { tone: "bad", text: join(t("phone.detail.failed", { reason }), consequence) };
      case "connecting":
        return { tone: "warn", text: join(t("phone.detail.connecting"), consequence) };
      case "disconnected": {
        // retryAt: the phone's own clock (ms), not a server time.
        const seconds = phone.retryAt ? Math.max(0, Math.ceil((phone.retryAt - Date.now()) / 1000)) : 0;
        const text = seconds > 0 ? t("phone.detail.retrying", { reason, seconds }) : t("phone.detail.retrying_now", { reason });
        return { tone: "bad", text: join(text, consequence) };
      }
      default:
        if (pbxState === "missing") return { tone: "bad", text: t("phone.detail.missing", { endpoint }) };
        if (pbxState === "offline") return { tone: "warn", text: t("phone.detail.not_seen_by_pbx", { endpoint }) };
        if (offlineBreak) return { tone: "warn", text: t("phone.detail.back_online") };
        return { tone: "ok", text: t("phone.detail.ready") };
    }
  }

  /** Once a second: time in the state, and the wrap-up time left. */
  tick() {
    const since = secondsSince(this.agent.since);
    setText("agent-state-since", since === null ? "" : t("desktop.since", { time: formatDuration(since) }));
    const left = this.agent.state === "wrap_up" ? secondsUntil(this.agent.wrap_up_ends) : null;
    const countdown = show("wrapup-countdown", left !== null);
    countdown.textContent = left === null ? "" : t("desktop.wrapup_left", { time: formatDuration(Math.ceil(left)) });
    countdown.dataset.seconds = left === null ? "" : String(Math.ceil(left));
    if (this.phone && this.phone.status === "disconnected") this.renderPhone(); // the retry countdown
  }
}
