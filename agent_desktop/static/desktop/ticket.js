// The ticket of the current call, with live validation: ~400 ms after the agent stops typing
// the changed fields are saved (created at the first edit, then PATCHed with the version seen)
// and the platform's rules are run on the server (/validate); every problem appears next to
// its field while the caller is still on the line. Submit completes the ticket (a 422 shows
// its problems the same way); the delivery to the national platform is reported later over
// the desktop's WebSocket (ticket.delivered / ticket.refused) and shown here.

import { get, patch, post } from "../lib/api.js";
import { byTestId, el, setText } from "../lib/dom.js";
import { formatDateTime, formatTime, onLanguageChange, t, tEnum } from "../lib/i18n.js";
import { ENUMS, PATHS, nest, readPath } from "./ticket-fields.js";
import { TicketView, problemsSummary, renderOtherProblems } from "./ticket-view.js";

const DEBOUNCE_MS = 400;

/** Our jurisdiction code as the platform's handling organisation (as callrecords/payload.py). */
export function handlingOf(code) {
  if (!code) return null;
  const [region, station] = code.split("-", 2);
  if (station) return { region, level: "station", station: station.padStart(3, "0") };
  if (region === "000000") return { region, level: "national" };
  if (region.endsWith("0000")) return { region, level: "province" };
  return { region, level: region.endsWith("00") ? "city" : "county" };
}

function asList(answer) {
  if (Array.isArray(answer)) return answer;
  return (answer && (answer.tickets || answer.items)) || [];
}

export class TicketDesk {
  constructor(panel) {
    this.panel = panel;
    this.view = new TicketView(byTestId("ticket-form", panel));
    this.submitButton = byTestId("ticket-submit", panel);
    this.newButton = byTestId("ticket-new", panel);
    this.callId = null;
    this.opening = null; // the call whose ticket is being opened
    this.card = null;
    this.tickets = [];
    this.ticket = null;
    this.dirty = new Set();
    this.saved = new Map(); // path -> the value the server has, to skip edits that change nothing
    this.problems = null; // null: not validated yet
    this.saveState = () => "";
    this.notice = null;
    this.timer = null;
    this.syncing = null;
    this.syncAgain = false;
    this.completing = false;

    const form = byTestId("ticket-form", panel);
    const edited = (event) => this.edited(event.target.name);
    form.addEventListener("input", edited);
    form.addEventListener("change", edited);
    form.addEventListener("submit", (event) => event.preventDefault());
    this.submitButton.addEventListener("click", () => this.complete());
    this.newButton.addEventListener("click", () => this.startNew());
    onLanguageChange(() => this.render());
  }

  // ------------------------------------------------------------------ which ticket is shown

  /** A call is offered or connected: show its ticket (an existing one, else a new form). */
  async openCall(card) {
    // The same call arrives in several messages ("state", "call.offered") one after another.
    if (card.call_id === this.callId || card.call_id === this.opening) {
      this.card = card;
      return;
    }
    this.opening = card.call_id;
    await this.flushQuietly(); // the previous call's last edits, saved on that call
    if (this.opening !== card.call_id) return; // yet another call came meanwhile
    this.opening = null;
    this.callId = card.call_id;
    this.card = card;
    this.tickets = [];
    this.showBlank();
    this.panel.hidden = false;
    try {
      const existing = asList(await get(`/api/desktop/tickets?call_id=${encodeURIComponent(card.call_id)}`));
      if (this.callId !== card.call_id) return; // another call came meanwhile
      for (const ticket of existing) this.remember(ticket);
      if (!this.ticket && existing.length) this.show(existing.find((x) => x.status === "draft") || existing.at(-1));
      this.render();
    } catch (error) {
      this.setNotice(() => t("ticketform.error.load", { message: error.message }));
    }
  }

  /** A blank form for another matter of the same call (one matter per ticket). */
  async startNew() {
    await this.flushQuietly();
    this.showBlank();
  }

  showBlank() {
    clearTimeout(this.timer);
    this.ticket = null;
    this.dirty.clear();
    this.saved.clear();
    this.problems = null;
    this.saveState = () => "";
    this.notice = null;
    this.view.clear();
    this.prefill();
    this.view.setEditable(true);
    this.view.showProblems([]);
    this.render();
  }

  // What the call already tells: the caller's choice in the menu, the line, the jurisdiction.
  prefill() {
    const card = this.card || {};
    const set = (path, value) => {
      if (value !== null && value !== undefined) this.view.input(path).value = value;
    };
    if (ENUMS.case_type.includes(card.choice)) set("case_type", card.choice);
    if (ENUMS.business_line.includes(card.business_line)) set("business_line", card.business_line);
    const handling = handlingOf(card.jurisdiction && card.jurisdiction.code);
    if (handling) {
      set("handling.region", handling.region);
      set("handling.level", handling.level);
      set("handling.station", handling.station);
    }
    this.view.applyRules();
  }

  show(ticket) {
    clearTimeout(this.timer);
    this.ticket = ticket;
    this.dirty.clear();
    this.view.fill((path) => readPath(ticket.fields, path));
    this.saved = new Map(PATHS.map((path) => [path, this.view.value(path)]));
    this.problems = ticket.delivery_problems && ticket.delivery_problems.length ? ticket.delivery_problems : null;
    this.view.showProblems(this.problems || []);
    this.render();
    if (ticket.status === "draft") this.requestSync(0);
  }

  remember(ticket) {
    const index = this.tickets.findIndex((x) => x.id === ticket.id);
    if (index >= 0) this.tickets[index] = ticket;
    else this.tickets.push(ticket);
  }

  setTicket(ticket) {
    this.remember(ticket);
    if (!this.ticket || this.ticket.id === ticket.id) {
      this.ticket = ticket;
      const keep = new Set(this.dirty);
      const active = document.activeElement && document.activeElement.name;
      if (active) keep.add(active);
      this.view.fill((path) => readPath(ticket.fields, path), keep);
    }
  }

  // ------------------------------------------------------------------ saving and validating

  edited(path) {
    if (!PATHS.includes(path) || !this.isEditable()) return;
    // "change" follows "input" when a box loses focus: nothing new to send then.
    if (!this.dirty.has(path) && this.ticket && this.saved.get(path) === this.view.value(path)) return;
    this.dirty.add(path);
    if (path === "caller.anonymous" || path === "case_type") {
      // Anonymity decides whether phone and name are sent at all.
      this.dirty.add("caller.phone");
      this.dirty.add("caller.name");
      if (path === "case_type") this.dirty.add("caller.anonymous");
    }
    this.view.applyRules();
    this.requestSync(DEBOUNCE_MS);
  }

  isEditable() {
    return !this.ticket || this.ticket.status === "draft";
  }

  requestSync(delay) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.sync().catch(() => {}), delay);
  }

  /** Save what changed, then validate; one run at a time, another after it if asked meanwhile. */
  sync() {
    clearTimeout(this.timer);
    if (this.syncing) {
      this.syncAgain = true;
      return this.syncing;
    }
    this.syncing = (async () => {
      do {
        this.syncAgain = false;
        await this.saveAndValidate();
      } while (this.syncAgain);
    })().finally(() => {
      this.syncing = null;
      this.render();
    });
    return this.syncing;
  }

  async saveAndValidate() {
    const callId = this.callId;
    await this.save();
    if (!this.ticket || this.ticket.status !== "draft" || this.callId !== callId) return;
    const id = this.ticket.id;
    const answer = await post(`/api/desktop/tickets/${encodeURIComponent(id)}/validate`);
    if (!this.ticket || this.ticket.id !== id) return;
    this.problems = (answer && answer.problems) || [];
    this.renderProblems();
  }

  async save() {
    if (!this.isEditable()) return;
    if (this.ticket && this.dirty.size === 0) return;
    const paths = this.ticket ? [...this.dirty] : PATHS.filter((p) => this.dirty.has(p) || this.view.value(p) !== null);
    this.dirty.clear();
    this.saveState = () => t("ticketform.saving");
    this.renderStatus();
    try {
      const values = new Map(paths.map((path) => [path, this.view.value(path)]));
      this.setTicket(await this.send(paths));
      for (const [path, value] of values) if (!this.dirty.has(path)) this.saved.set(path, value);
      const at = new Date();
      this.saveState = () => t("ticketform.saved_at", { time: formatTime(at) });
    } catch (error) {
      for (const path of paths) this.dirty.add(path);
      this.saveState = () => t("ticketform.not_saved", { message: error.message });
      if (error.errors.length) {
        this.problems = error.errors;
        this.renderProblems();
      }
      throw error;
    } finally {
      this.renderStatus();
    }
  }

  async send(paths) {
    // The API shows the caller's number masked (138****8000) unless configured otherwise:
    // a masked number is never sent back (it would overwrite the real one).
    const entries = paths.map((path) => [path, this.view.value(path)])
      .filter(([path, value]) => !(path === "caller.phone" && typeof value === "string" && value.includes("*")));
    const fields = nest(entries);
    if (this.ticket && entries.length === 0) return this.ticket;
    if (!this.ticket) {
      const first = this.tickets[0];
      if (first) fields.related_to = first.id;
      return post("/api/desktop/tickets", { call_id: this.callId, fields });
    }
    const url = `/api/desktop/tickets/${encodeURIComponent(this.ticket.id)}`;
    try {
      return await patch(url, { version: this.ticket.version, fields });
    } catch (error) {
      if (error.status !== 409) throw error;
      // Changed elsewhere since we read it (a refusal coming back, another tab): send our
      // changes once more on top of the current version.
      const current = await get(url);
      this.setTicket(current);
      if (current.status !== "draft") throw error;
      return patch(url, { version: current.version, fields });
    }
  }

  /** Save pending edits before the form is reused (best effort: failures stay on screen). */
  async flushQuietly() {
    if (this.dirty.size === 0 && !this.syncing) return;
    try {
      await this.sync();
    } catch {
      // shown in the save state already
    }
  }

  // ------------------------------------------------------------------ completing and delivery

  async complete() {
    if (this.completing) return;
    this.completing = true;
    this.render();
    try {
      if (!this.ticket || this.dirty.size > 0) await this.sync();
      else if (this.syncing) await this.syncing;
      if (!this.ticket) return;
      const url = `/api/desktop/tickets/${encodeURIComponent(this.ticket.id)}/complete`;
      const ticket = await post(url, { version: this.ticket.version });
      this.setTicket(ticket);
      this.problems = [];
      this.setNotice(() => t("ticketform.completed_notice"));
    } catch (error) {
      if (error.status === 422 && error.errors.length) {
        this.problems = error.errors;
        this.setNotice(() => t("ticketform.fix_problems"));
      } else {
        this.setNotice(() => t("ticketform.error.complete", { message: error.message }));
      }
      if (error.status === 409 && this.ticket) await this.reload();
    } finally {
      this.completing = false;
      this.render();
    }
  }

  /** ticket.delivered / ticket.refused from the desktop's WebSocket. */
  async deliveryNews(message) {
    const known = this.tickets.find((x) => x.id === message.ticket_id);
    if (!known) return;
    let fresh;
    try {
      fresh = await get(`/api/desktop/tickets/${encodeURIComponent(message.ticket_id)}`);
    } catch {
      fresh = known; // the message alone still says what happened
    }
    // The message is the news: it wins over a read that may have raced it.
    fresh = { ...fresh, delivery_state: message.type === "ticket.delivered" ? "delivered" : "refused",
      platform_case_no: message.platform_case_no || fresh.platform_case_no };
    const current = this.ticket && this.ticket.id === fresh.id;
    this.remember(fresh);
    if (current) {
      this.ticket = fresh;
      if (message.type === "ticket.refused") {
        // Back to draft: the form opens again with the platform's problems on the fields.
        this.view.fill((path) => readPath(fresh.fields, path), new Set(this.dirty));
        const problems = message.problems && message.problems.length ? message.problems : fresh.delivery_problems;
        this.problems = problems || [];
        this.setNotice(() => t("ticketform.refused_notice"));
      } else {
        this.setNotice(() => t("ticketform.delivered_notice", { no: fresh.platform_case_no || "" }));
      }
    }
    this.render();
  }

  async reload() {
    try {
      this.setTicket(await get(`/api/desktop/tickets/${encodeURIComponent(this.ticket.id)}`));
    } catch {
      // the notice already says what failed
    }
  }

  setNotice(describe) {
    this.notice = describe;
    this.render();
  }

  // ------------------------------------------------------------------ rendering

  render() {
    this.renderTabs();
    this.renderStatus();
    this.renderProblems();
    const ticket = this.ticket;
    const editable = this.isEditable();
    this.view.setEditable(editable);
    this.submitButton.disabled = !editable || this.completing;
    this.newButton.disabled = !this.ticket || this.completing;
    const notice = byTestId("ticket-notice", this.panel);
    notice.textContent = this.notice ? this.notice() : "";
    notice.hidden = !this.notice;
    this.renderDeadlines(ticket && ticket.deadlines);
  }

  renderTabs() {
    const tabs = byTestId("ticket-tabs", this.panel);
    tabs.replaceChildren(...this.tickets.map((ticket, index) => {
      const button = el("button", { type: "button", testid: `ticket-tab-${ticket.id}`,
        "aria-current": this.ticket && this.ticket.id === ticket.id ? "true" : "false" },
      t("ticketform.tab", { n: index + 1, type: tEnum("case_type", readPath(ticket.fields, "case_type")) || "–",
        status: tEnum("ticket_status", ticket.status) }));
      button.addEventListener("click", async () => {
        await this.flushQuietly();
        this.show(this.tickets.find((x) => x.id === ticket.id));
      });
      return button;
    }));
  }

  renderStatus() {
    const ticket = this.ticket;
    const status = ticket ? ticket.status : "new";
    const statusNode = setText("ticket-status", ticket ? tEnum("ticket_status", status) : t("ticketform.status_new"));
    statusNode.dataset.status = status;
    setText("ticket-id", ticket ? t("ticketform.id", { id: ticket.id.slice(0, 8) }) : "");
    if (ticket) byTestId("ticket-id").title = ticket.id;
    setText("ticket-save-state", this.saveState());
    const delivery = ticket && ticket.delivery_state;
    const deliveryNode = setText("ticket-delivery-state",
      delivery && delivery !== "not_sent" ? t("ticketform.delivery", { state: tEnum("delivery_state", delivery) }) : "");
    deliveryNode.dataset.state = delivery || "";
    const caseNo = ticket && ticket.platform_case_no;
    const caseNode = setText("ticket-platform-case-no", caseNo ? t("ticketform.platform_case_no", { no: caseNo }) : "");
    caseNode.dataset.value = caseNo || "";
  }

  renderProblems() {
    const problems = this.problems || [];
    const others = this.view.showProblems(problems);
    renderOtherProblems(byTestId("ticket-problems", this.panel), others);
    const summary = byTestId("ticket-problems-summary", this.panel);
    summary.textContent = this.problems === null ? "" : problemsSummary(problems.length);
    summary.dataset.count = this.problems === null ? "" : String(problems.length);
    summary.className = problems.length ? "error" : "muted";
  }

  renderDeadlines(deadlines) {
    const box = byTestId("ticket-deadlines", this.panel);
    const entries = Object.entries(deadlines || {}).filter(([, value]) => typeof value === "string" && value);
    box.hidden = entries.length === 0;
    box.replaceChildren(
      el("h3", { text: t("ticketform.deadlines") }),
      el("ul", {}, entries.map(([kind, value]) =>
        el("li", { testid: `ticket-deadline-${kind}` },
          `${tEnum("deadline_kind", kind)}: ${/^\d{4}-\d{2}-\d{2}$/.test(value) ? value : formatDateTime(value)}`))),
    );
  }
}
