// The agent's own state in the header: the badge, how long in it, the wrap-up countdown, and
// the buttons that change it (log in to / out of the queues, available, break with a reason).

import { post } from "../lib/api.js";
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

export class AgentBar {
  /** @param {(state: object) => void} onState called with the desktop state an action returned */
  constructor(onState, showError) {
    this.agent = { state: "offline" };
    this.onState = onState;
    this.showError = showError;
    this.busy = false;
    const act = (id, path, body) => byTestId(id).addEventListener("click", () => this.act(path, body()));
    act("queue-login", "/api/desktop/queues/login", () => ({}));
    act("queue-logout", "/api/desktop/queues/logout", () => ({}));
    act("state-available", "/api/desktop/state", () => ({ state: "available" }));
    act("state-break", "/api/desktop/state", () => ({ state: "break", reason: byTestId("break-reason").value }));
  }

  async act(path, body) {
    this.busy = true;
    this.renderButtons();
    this.showError(null);
    try {
      this.onState(await post(path, body));
    } catch (error) {
      const message = error.message;
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
    this.tick();
  }

  renderButtons() {
    const allowed = ALLOWED[this.agent.state] || [];
    for (const id of BUTTONS) byTestId(id).disabled = this.busy || !allowed.includes(id);
    byTestId("break-reason").disabled = this.busy || !allowed.includes("state-break");
  }

  /** Once a second: time in the state, and the wrap-up time left. */
  tick() {
    const since = secondsSince(this.agent.since);
    setText("agent-state-since", since === null ? "" : t("desktop.since", { time: formatDuration(since) }));
    const left = this.agent.state === "wrap_up" ? secondsUntil(this.agent.wrap_up_ends) : null;
    const countdown = show("wrapup-countdown", left !== null);
    countdown.textContent = left === null ? "" : t("desktop.wrapup_left", { time: formatDuration(Math.ceil(left)) });
    countdown.dataset.seconds = left === null ? "" : String(Math.ceil(left));
  }
}
