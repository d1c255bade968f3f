// The ticket panel: a tab per ticket the agent has open (the current call's, and the drafts they
// opened from "my drafts"), each with its own form (ticket-tab.js). Nothing an agent typed is
// ever replaced: a new call opens its own tab, beside a tab that holds unsaved text or a draft,
// and the agent chooses which to work on; a tab closes only when the server has all of it.
// The open tabs and their unsaved text are kept in localStorage (local-drafts.js) and come back
// after a reload or a new login; every draft of the agent is in the list of drafts.
//
// The delivery to the national platform is reported later over the desktop's WebSocket
// (ticket.delivered / ticket.refused) and shown in the ticket's tab.

import { errorWords, get } from "../lib/api.js";
import { byTestId, el, setText } from "../lib/dom.js";
import { formatClock, formatDate, formatDateTime, onLanguageChange, t, tEnum } from "../lib/i18n.js";
import { LocalDrafts } from "./local-drafts.js";
import { readPath } from "./ticket-fields.js";
import { TicketTab } from "./ticket-tab.js";
import { problemsSummary, renderOtherProblems } from "./ticket-view.js";

export { handlingOf } from "./ticket-tab.js";

const NOTICE_CLASS = { ok: "ok", warn: "notice", bad: "error" };
const DRAFTS_REFRESH_MS = 1500;

/** A number as lists show it (138****8000): the tab bar is a list, whoever typed the number. */
function masked(phone) {
  const digits = String(phone || "").trim();
  if (!digits || digits.includes("*")) return digits;
  if (digits.length < 7) return "***";
  if (digits.length < 11) return `${"*".repeat(digits.length - 4)}${digits.slice(-4)}`;
  return `${digits.slice(0, 3)}${"*".repeat(digits.length - 7)}${digits.slice(-4)}`;
}

function asList(answer) {
  if (Array.isArray(answer)) return answer;
  return (answer && (answer.tickets || answer.items)) || [];
}

function showNotice(node, notice) {
  node.textContent = notice ? notice.describe() : "";
  node.hidden = !notice;
  node.className = notice ? `${NOTICE_CLASS[notice.tone] || "notice"} banner` : "";
  node.dataset.tone = notice ? notice.tone : "";
}

export class TicketDesk {
  /** @param {HTMLElement} panel the ticket panel; @param {HTMLElement} draftsPanel "my drafts" */
  constructor(panel, draftsPanel) {
    this.panel = panel;
    this.draftsPanel = draftsPanel;
    this.store = new LocalDrafts(null);
    this.tabs = [];
    this.active = null;
    this.knownCalls = new Set();
    this.currentCall = null;
    this.deskNotice = null;
    this.drafts = null; // null: not read yet
    this.draftsTimer = null;
    this.draftsError = null;
    this.submitButton = byTestId("ticket-submit", panel);
    this.newButton = byTestId("ticket-new", panel);
    this.slot = byTestId("ticket-form-slot", panel);
    this.submitButton.addEventListener("click", () => this.active && this.active.complete());
    this.newButton.addEventListener("click", () => this.startNew());
    byTestId("drafts-refresh", draftsPanel).addEventListener("click", () => this.refreshDrafts());
    onLanguageChange(() => {
      for (const tab of this.tabs) tab.retranslate();
      this.render();
      this.renderDrafts();
    });
    // The page going to the background, then away: save now, and what cannot wait for an answer
    // goes in requests that outlive the page (localStorage has every edit already).
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "hidden") this.flushAll();
    });
    window.addEventListener("pagehide", () => this.leaving());
    window.addEventListener("online", () => this.flushAll());
  }

  // ------------------------------------------------------------------ starting

  /** The agent's tabs as they were (localStorage), then their drafts from the server. */
  async start(agentId) {
    this.store = new LocalDrafts(agentId);
    const open = this.store.readOpen();
    const records = new Map(this.store.all().map((record) => [record.key, record]));
    const entries = [...open.tabs];
    for (const record of records.values()) {
      if (!entries.some((entry) => entry.key === record.key)) entries.push({ key: record.key });
    }
    for (const entry of entries) {
      if (this.tabs.some((tab) => tab.key === entry.key)) continue;
      const record = records.get(entry.key) || null;
      const tab = await this.restoreTab(entry, record);
      if (tab) this.addTab(tab);
    }
    this.activate(this.tabs.find((tab) => tab.key === open.active) || this.tabs.at(-1) || null);
    await this.refreshDrafts();
  }

  async restoreTab(entry, record) {
    const ticketId = (record && record.ticketId) || entry.ticketId;
    if (ticketId) {
      let ticket;
      try {
        ticket = await get(`/api/desktop/tickets/${encodeURIComponent(ticketId)}`);
      } catch (error) {
        // Gone or not this agent's: nothing to restore. Anything else (the network): the record
        // stays for the next load.
        if (error.status === 403 || error.status === 404) this.store.remove(entry.key);
        return null;
      }
      const tab = this.newTab({ key: entry.key, ticket });
      if (record) tab.restore(record);
      return tab;
    }
    if (!record || !record.dirty || record.dirty.length === 0) {
      if (record) this.store.remove(entry.key);
      return null;
    }
    const tab = this.newTab({ key: entry.key, callId: record.callId, card: record.card });
    tab.restore(record);
    return tab;
  }

  newTab(options) {
    const tab = new TicketTab({ store: this.store, onChange: (changed) => this.tabChanged(changed), ...options });
    tab.onCreated = () => this.persistOpen();
    // The list shows the first words of each draft: read again a moment after saves.
    tab.onSaved = () => {
      clearTimeout(this.draftsTimer);
      this.draftsTimer = setTimeout(() => this.refreshDrafts(), DRAFTS_REFRESH_MS);
    };
    return tab;
  }

  // ------------------------------------------------------------------ calls

  /** A call is offered, connected or ended: its tickets get a tab, beside the others. */
  async openCall(card) {
    this.currentCall = card;
    for (const tab of this.tabs) if (tab.callId === card.call_id) tab.setCard(card);
    if (this.knownCalls.has(card.call_id)) {
      this.render();
      return;
    }
    this.knownCalls.add(card.call_id);
    // Tabs with nothing to keep (blank forms of earlier calls, tickets submitted and not looked
    // at) make room; a tab with text or a draft stays.
    for (const tab of [...this.tabs]) {
      if (tab.callId === card.call_id || tab.hasWork() || tab.syncing) continue;
      if (tab.isBlank() || tab !== this.active) this.removeTab(tab);
    }
    let existing = [];
    try {
      existing = asList(await get(`/api/desktop/tickets?call_id=${encodeURIComponent(card.call_id)}`));
    } catch (error) {
      const message = errorWords(error);
      this.setDeskNotice("bad", () => t("ticketform.error.load", { message }));
    }
    for (const ticket of existing) {
      if (!this.tabOfTicket(ticket.id)) this.addTab(this.newTab({ ticket, card }));
    }
    const ofCall = this.tabs.filter((tab) => tab.callId === card.call_id);
    let target = ofCall.find((tab) => tab.ticket && tab.ticket.status === "draft") || ofCall.at(-1);
    if (!target) target = this.addTab(this.newTab({ callId: card.call_id, card }));
    const current = this.active;
    if (!current || current === target || !this.tabs.includes(current) || !current.hasWork()) {
      this.activate(target);
    } else {
      // The agent is writing another ticket: it stays in front, the new call waits in its tab.
      target.fresh = true;
      this.setDeskNotice("warn", () => t("ticketform.new_call_beside"));
    }
    this.persistOpen();
    this.render();
  }

  /** A blank form for another matter of the active tab's call (one matter per ticket). */
  startNew() {
    const from = this.active;
    const callId = from ? from.callId : this.currentCall && this.currentCall.call_id;
    if (!callId) return;
    const first = this.tabs.find((tab) => tab.callId === callId && tab.ticket);
    const card = this.currentCall && this.currentCall.call_id === callId ? this.currentCall : from && from.card;
    const tab = this.addTab(this.newTab({ callId, card, relatedTo: first ? first.ticket.id : null }));
    this.activate(tab);
  }

  /** Open a ticket (from the list of drafts) in its tab, or in a new one. */
  async openTicket(id) {
    const open = this.tabOfTicket(id);
    if (open) {
      this.activate(open);
      return;
    }
    try {
      const ticket = await get(`/api/desktop/tickets/${encodeURIComponent(id)}`);
      if (this.tabOfTicket(id)) return this.activate(this.tabOfTicket(id));
      this.activate(this.addTab(this.newTab({ ticket })));
    } catch (error) {
      const message = errorWords(error);
      this.setDeskNotice("bad", () => t("drafts.error.open", { message }));
    }
  }

  /** ticket.delivered / ticket.refused from the desktop's WebSocket. */
  async deliveryNews(message) {
    const tab = this.tabOfTicket(message.ticket_id);
    if (message.type === "ticket.refused") this.refreshDrafts(); // back to draft: on the list again
    if (!tab) return;
    let fresh;
    try {
      fresh = await get(`/api/desktop/tickets/${encodeURIComponent(message.ticket_id)}`);
    } catch {
      fresh = tab.ticket; // the message alone still says what happened
    }
    // The message is the news: it wins over a read that may have raced it.
    fresh = { ...fresh, delivery_state: message.type === "ticket.delivered" ? "delivered" : "refused",
      platform_case_no: message.platform_case_no || fresh.platform_case_no };
    tab.delivered(fresh, message);
  }

  // ------------------------------------------------------------------ tabs

  tabOfTicket(id) {
    return this.tabs.find((tab) => tab.ticket && tab.ticket.id === id) || null;
  }

  addTab(tab) {
    this.tabs.push(tab);
    this.persistOpen();
    return tab;
  }

  removeTab(tab) {
    clearTimeout(tab.timer);
    this.tabs = this.tabs.filter((x) => x !== tab);
    if (!tab.hasWork() || tab.ticket) tab.backup(); // forgets the record when the server has it all
    if (this.active === tab) this.active = null;
  }

  activate(tab) {
    if (tab && !this.tabs.includes(tab)) return;
    this.active = tab;
    if (tab) tab.fresh = false;
    if (tab && this.deskNotice && !this.tabs.some((x) => x.fresh)) this.deskNotice = null;
    this.persistOpen();
    this.render();
  }

  /** Close a tab the server has everything of (a draft stays in the list of drafts). */
  async closeTab(tab) {
    await tab.flush();
    if (tab.dirty.size > 0 || tab.saveFailed) {
      this.setDeskNotice("bad", () => t("ticketform.cannot_close"));
      return;
    }
    const index = this.tabs.indexOf(tab);
    this.removeTab(tab);
    this.store.remove(tab.key);
    if (!this.active) this.activate(this.tabs[Math.min(index, this.tabs.length - 1)] || null);
    this.persistOpen();
    this.render();
  }

  tabChanged(tab) {
    if (tab === this.active) this.render();
    else this.renderTabs();
  }

  persistOpen() {
    this.store.saveOpen(this.tabs.map((tab) => ({ key: tab.key, ticketId: tab.ticket ? tab.ticket.id : null,
      callId: tab.callId })), this.active ? this.active.key : null);
  }

  setDeskNotice(tone, describe) {
    this.deskNotice = describe ? { tone, describe } : null;
    this.render();
  }

  /** Save every tab's pending edits now. */
  flushAll() {
    for (const tab of this.tabs) tab.flush();
  }

  leaving() {
    for (const tab of this.tabs) {
      tab.backup();
      tab.sendBeforeLeaving();
    }
    this.persistOpen();
  }

  // ------------------------------------------------------------------ the list of drafts

  async refreshDrafts() {
    try {
      const answer = await get("/api/desktop/drafts");
      this.drafts = (answer && answer.drafts) || [];
      this.draftsError = null;
    } catch (error) {
      const message = errorWords(error);
      this.draftsError = () => t("drafts.error.load", { message });
    }
    this.renderDrafts();
  }

  renderDrafts() {
    const panel = this.draftsPanel;
    const drafts = this.drafts || [];
    setText("drafts-count", drafts.length ? t("drafts.count", { count: drafts.length }) : "", panel);
    byTestId("drafts-empty", panel).hidden = this.drafts === null || drafts.length > 0;
    const error = byTestId("drafts-error", panel);
    error.textContent = this.draftsError ? this.draftsError() : "";
    error.hidden = !this.draftsError;
    byTestId("drafts-list", panel).replaceChildren(...drafts.map((draft) => {
      const open = Boolean(this.tabOfTicket(draft.id));
      const parts = [
        el("span", { class: "when" }, formatDateTime(draft.received_at || draft.created_at)),
        el("span", { class: "who" }, draft.caller || t("callcard.unknown_caller")),
        el("span", {}, tEnum("business_line", draft.business_line) || t("drafts.no_line")),
        el("span", {}, tEnum("case_type", draft.case_type) || t("ticketform.tab_no_type")),
      ];
      if (draft.delivery_state === "refused") parts.push(el("span", { class: "chip bad" }, t("drafts.refused")));
      if (open) parts.push(el("span", { class: "chip" }, t("drafts.open")));
      const button = el("button", { type: "button", class: "draft", testid: `draft-${draft.id}`,
        dataset: { callId: draft.call_id || "", open: String(open) } },
      el("span", { class: "line" }, parts),
      el("span", { class: "summary" }, draft.summary || t("drafts.no_summary")));
      button.addEventListener("click", () => this.openTicket(draft.id));
      return el("li", {}, button);
    }));
  }

  // ------------------------------------------------------------------ rendering

  render() {
    this.panel.hidden = this.tabs.length === 0;
    this.renderTabs();
    const tab = this.active;
    if (tab) {
      if (this.slot.firstElementChild !== tab.form) this.slot.replaceChildren(tab.form);
    } else {
      this.slot.replaceChildren();
    }
    showNotice(byTestId("ticket-desk-notice", this.panel), this.deskNotice);
    showNotice(byTestId("ticket-notice", this.panel), tab && tab.notice);
    this.renderStatus(tab);
    this.renderProblems(tab);
    this.renderDeadlines(tab && tab.ticket && tab.ticket.deadlines);
    this.submitButton.disabled = !tab || !tab.isEditable() || tab.completing;
    this.newButton.disabled = !tab || !tab.callId || !tab.ticket || tab.completing;
    this.renderDrafts();
  }

  tabLabel(tab) {
    const ticket = tab.ticket;
    const type = readPath(ticket ? ticket.fields : null, "case_type") || tab.view.value("case_type");
    const when = (ticket && (readPath(ticket.fields, "received_at") || ticket.created_at)) || tab.openedAt;
    const caller = (tab.card && tab.card.caller) || masked(readPath(ticket ? ticket.fields : null, "caller.phone"));
    return t("ticketform.tab", { time: formatClock(when), caller: caller || t("callcard.unknown_caller"),
      type: tEnum("case_type", type) || t("ticketform.tab_no_type") });
  }

  renderTabs() {
    const bar = byTestId("ticket-tabs", this.panel);
    const focused = document.activeElement && bar.contains(document.activeElement)
      ? document.activeElement.dataset.testid : null;
    bar.replaceChildren(...this.tabs.map((tab) => {
      const state = tab.tabState();
      const stateWords = state === "unsaved" ? t("ticketform.tab_state.unsaved")
        : state === "new" ? t("ticketform.tab_state.new") : tEnum("ticket_status", state);
      const selected = tab === this.active;
      const button = el("button", { type: "button", role: "tab", class: "tab", testid: `ticket-tab-${tab.key}`,
        "aria-selected": String(selected),
        dataset: { callId: tab.callId || "", ticketId: tab.ticket ? tab.ticket.id : "", state, fresh: String(tab.fresh) } },
      el("span", {}, this.tabLabel(tab)),
      el("span", { class: `chip ${state}` }, stateWords),
      tab.fresh ? el("span", { class: "chip fresh" }, t("ticketform.tab_new_call")) : null);
      button.addEventListener("click", () => this.activate(tab));
      const close = el("button", { type: "button", class: "tab-close", testid: `ticket-tab-close-${tab.key}`,
        "aria-label": t("ticketform.tab_close"), title: t("ticketform.tab_close") }, "×");
      close.addEventListener("click", () => this.closeTab(tab));
      return el("span", { class: "tab-item", dataset: { selected: String(selected) } }, button, close);
    }));
    if (focused) {
      const again = byTestId(focused, bar);
      if (again) again.focus();
    }
  }

  renderStatus(tab) {
    const ticket = tab && tab.ticket;
    const status = ticket ? ticket.status : "new";
    const statusNode = setText("ticket-status", ticket ? tEnum("ticket_status", status) : t("ticketform.status_new"));
    statusNode.dataset.status = status;
    const idNode = setText("ticket-id", ticket ? t("ticketform.id", { id: ticket.id.slice(0, 8) }) : "");
    idNode.title = ticket ? ticket.id : "";
    const saveNode = setText("ticket-save-state", tab ? tab.saveState() : "");
    saveNode.dataset.state = tab ? tab.tabState() : "";
    const delivery = ticket && ticket.delivery_state;
    const deliveryNode = setText("ticket-delivery-state",
      delivery && delivery !== "not_sent" ? t("ticketform.delivery", { state: tEnum("delivery_state", delivery) }) : "");
    deliveryNode.dataset.state = delivery || "";
    const caseNo = ticket && ticket.platform_case_no;
    const caseNode = setText("ticket-platform-case-no", caseNo ? t("ticketform.platform_case_no", { no: caseNo }) : "");
    caseNode.dataset.value = caseNo || "";
  }

  renderProblems(tab) {
    const problems = (tab && tab.problems) || [];
    const others = tab ? tab.renderProblems() : [];
    renderOtherProblems(byTestId("ticket-problems", this.panel), others);
    const summary = byTestId("ticket-problems-summary", this.panel);
    const unknown = !tab || tab.problems === null;
    summary.textContent = unknown ? "" : problemsSummary(problems.length);
    summary.dataset.count = unknown ? "" : String(problems.length);
    summary.className = problems.length ? "error" : "ok";
  }

  renderDeadlines(deadlines) {
    const box = byTestId("ticket-deadlines", this.panel);
    const days = ["accept_by", "finish_by", "verify_by"].filter((kind) => deadlines && deadlines[kind]);
    const unset = deadlines && deadlines.unset;
    box.hidden = days.length === 0 && !unset;
    const items = days.map((kind) =>
      el("li", { testid: `ticket-deadline-${kind}` },
        t("ticketform.deadline_item", { kind: tEnum("deadline_kind", kind), day: formatDate(deadlines[kind]) })));
    if (unset) {
      const known = unset.code === "calendar_not_published";
      items.push(el("li", { testid: "ticket-deadline-unset", class: "muted", dataset: { code: unset.code } },
        known ? t("deadline.unset.calendar_not_published",
          { deadline: tEnum("deadline_kind", unset.deadline), year: unset.year })
          : t("deadline.unset.other")));
    }
    box.replaceChildren(el("h3", { text: t("ticketform.deadlines") }), el("ul", {}, items));
  }
}
