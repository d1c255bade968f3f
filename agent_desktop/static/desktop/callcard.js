// The call card: who is calling (masked), what they dialled and chose in the menu, what speech
// recognition heard, their jurisdiction and wait, their earlier tickets; and the call's
// buttons (answer, hang up, hold, mute, transfer to a queue or an agent).

import { errorWords, post } from "../lib/api.js";
import { byTestId, el, setText, show } from "../lib/dom.js";
import { formatDateTime, formatDuration, t, tEnum } from "../lib/i18n.js";
import { menuPathWords } from "./menu-path.js";
import { PhoneError } from "./phone.js";

export class CallCard {
  /**
   * @param {{phone: () => object|null, onState: (state) => void}} hooks
   *   phone(): the current phone; onState: a desktop state an action returned.
   */
  constructor(hooks) {
    this.hooks = hooks;
    this.card = null;
    this.held = false;
    this.muted = false;
    this.busy = false;
    this.error = null;
    const on = (id, handler) => byTestId(id).addEventListener("click", handler);
    on("call-answer", () => this.phoneAction((phone) => phone.answer()));
    on("call-hangup", () => this.phoneAction((phone) => phone.hangup()));
    on("call-hold", () => this.phoneAction(async (phone) => {
      const answer = await phone.hold(!this.held);
      this.held = !this.held;
      return answer;
    }));
    on("call-mute", () => this.phoneAction(async (phone) => {
      const answer = await phone.mute(!this.muted);
      this.muted = !this.muted;
      return answer;
    }));
    byTestId("fix-jurisdiction-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.fixJurisdiction();
    });
    byTestId("transfer-kind").addEventListener("change", () => this.renderTransferKind());
    byTestId("transfer-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.transfer();
    });
  }

  /** Show `card` (null: no call). A different call resets hold, mute and the transfer form. */
  render(card) {
    const isNew = card && (!this.card || this.card.call_id !== card.call_id);
    this.card = card;
    show("no-call", !card);
    const root = show("call-card", Boolean(card));
    if (!card) return;
    if (isNew || card.state === "ended") {
      this.held = false;
      this.muted = false;
    }
    // The server knows hold and mute when it does them (simulated phone, over ARI); a SIP
    // phone holds and mutes in the browser, so there the buttons keep their own state.
    const phone = this.hooks.phone();
    if (phone && phone.mode === "simulated") {
      if (typeof card.on_hold === "boolean") this.held = card.on_hold;
      if (typeof card.muted === "boolean") this.muted = card.muted;
    }
    if (isNew) {
      this.error = null;
      byTestId("transfer-jurisdiction").value = (card.jurisdiction && card.jurisdiction.code) || "";
      if (card.business_line) byTestId("transfer-line").value = card.business_line;
      byTestId("transfer-agent").value = "";
    }
    root.dataset.callId = card.call_id;
    root.dataset.state = card.state;
    const badge = setText("call-state", tEnum("call_state", card.state));
    badge.dataset.state = card.state;
    setText("call-caller", card.caller || t("callcard.unknown_caller"));
    setText("call-hotline-number", card.hotline_number || "–");
    setText("call-business-line", tEnum("business_line", card.business_line) || "–");
    setText("call-menu-path", menuPathWords(card.menu_path || []) || "–");
    setText("call-choice", tEnum("menu_choice", card.choice) || "–");
    setText("call-transcript", card.transcript || "–");
    setText("call-recognized-by", card.recognized_by ? `(${tEnum("recognized_by", card.recognized_by)})` : "");
    const jurisdiction = card.jurisdiction || {};
    setText("call-jurisdiction",
      jurisdiction.code ? `${jurisdiction.name || ""} (${jurisdiction.code}, ${tEnum("level", jurisdiction.level)})` : "–");
    byTestId("call-waited").dataset.seconds = String(card.waited_s ?? "");
    setText("call-waited", t("callcard.waited_value", { time: formatDuration(card.waited_s) }));
    this.renderPrevious(card.previous_tickets || []);
    this.renderButtons();
    this.renderError();
    this.renderTransferKind();
  }

  renderPrevious(tickets) {
    show("call-no-previous", tickets.length === 0);
    byTestId("call-previous-tickets").replaceChildren(...tickets.map((ticket) =>
      el("li", { testid: `previous-ticket-${ticket.id}` },
        el("strong", {}, tEnum("case_type", ticket.case_type)), " · ",
        tEnum("ticket_status", ticket.status), " · ",
        formatDateTime(ticket.created_at), " — ",
        ticket.summary || "")));
  }

  renderButtons() {
    const state = this.card ? this.card.state : "ended";
    const set = (id, enabled) => {
      byTestId(id).disabled = this.busy || !enabled;
    };
    set("call-answer", state === "ringing");
    set("call-hangup", state === "ringing" || state === "connected");
    set("call-hold", state === "connected");
    set("call-mute", state === "connected");
    set("transfer-submit", state === "connected");
    set("fix-jurisdiction-submit", state === "connected");
    byTestId("call-hold").setAttribute("aria-pressed", String(this.held));
    byTestId("call-mute").setAttribute("aria-pressed", String(this.muted));
    byTestId("call-hold").textContent = t(this.held ? "callcard.unhold" : "callcard.hold");
    byTestId("call-mute").textContent = t(this.muted ? "callcard.unmute" : "callcard.mute");
  }

  renderTransferKind() {
    const toAgent = byTestId("transfer-kind").value === "agent";
    show("transfer-queue-fields", !toAgent);
    show("transfer-line-field", !toAgent);
    show("transfer-agent-field", toAgent);
  }

  renderError() {
    const box = show("call-error", Boolean(this.error));
    box.textContent = this.error ? this.error() : "";
  }

  setError(error) {
    if (!error) this.error = null;
    else if (error instanceof PhoneError) this.error = () => t(error.key);
    else {
      const message = errorWords(error);
      this.error = () => message;
    }
    this.renderError();
  }

  async run(action) {
    this.busy = true;
    this.setError(null);
    this.renderButtons();
    try {
      const state = await action();
      if (state) this.hooks.onState(state);
    } catch (error) {
      this.setError(error);
    } finally {
      this.busy = false;
      this.renderButtons();
    }
  }

  phoneAction(action) {
    return this.run(() => {
      const phone = this.hooks.phone();
      if (!phone) throw new PhoneError("phone.error.not_ready");
      return action(phone);
    });
  }

  /** The caller is somewhere else than the IVR concluded: the call (and its record) move there. */
  fixJurisdiction() {
    const code = byTestId("fix-jurisdiction-code").value.trim();
    if (!code) return this.setError(new PhoneError("fix_jurisdiction.error.empty"));
    return this.run(() => post("/api/desktop/call/jurisdiction", { code }));
  }

  transfer() {
    const kind = byTestId("transfer-kind").value;
    let body;
    if (kind === "agent") {
      const agentId = byTestId("transfer-agent").value.trim();
      if (!agentId) return this.setError(new PhoneError("transfer.error.no_agent"));
      body = { agent_id: agentId };
    } else {
      const jurisdiction = byTestId("transfer-jurisdiction").value.trim();
      if (!jurisdiction) return this.setError(new PhoneError("transfer.error.no_jurisdiction"));
      body = { queue: { jurisdiction, line: byTestId("transfer-line").value } };
    }
    return this.run(() => post("/api/desktop/call/transfer", body));
  }
}
