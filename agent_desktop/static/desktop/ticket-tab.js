// One tab of the ticket panel: one ticket (or the ticket about to be) of one call, with its own
// form, so that switching tabs or a new call never touches what is typed in another.
//
// Saving: every edit is kept in localStorage at once (local-drafts.js); ~400 ms after the agent
// stops typing, when a field loses focus and when the page is hidden, the changed fields are
// saved (the ticket is created at the first save, then PATCHed with the version seen) and the
// platform's rules are run on the server (/validate); every problem appears next to its field
// while the caller is still on the line. A save that fails keeps the text on screen and in
// localStorage and is tried again at the next edit, on the next reload and when the network
// comes back. Submit completes the ticket (a 422 shows its problems the same way).

import { errorWords, get, patch, post, request } from "../lib/api.js";
import { el } from "../lib/dom.js";
import { applyTranslations, formatTime, t } from "../lib/i18n.js";
import { ENUMS, PATHS, nest, readPath } from "./ticket-fields.js";
import { TicketView } from "./ticket-view.js";

const DEBOUNCE_MS = 400;
const RETRY_MS = 5000;

/** Our jurisdiction code as the platform's handling organisation (as callrecords/payload.py). */
export function handlingOf(code) {
  if (!code) return null;
  const [region, station] = code.split("-", 2);
  if (station) return { region, level: "station", station: station.padStart(3, "0") };
  if (region === "000000") return { region, level: "national" };
  if (region.endsWith("0000")) return { region, level: "province" };
  return { region, level: region.endsWith("00") ? "city" : "county" };
}

/** A new ticket's id, chosen here (a UUID v4): sending its creation twice creates it once. */
export function newTicketId() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes); // also on plain http, where crypto.randomUUID is missing
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** What of a call card a tab keeps (to prefill and to name the tab after a reload). */
function cardLite(card) {
  if (!card) return null;
  const { call_id, state, caller, business_line, choice, jurisdiction, started_at } = card;
  return { call_id, state, caller, business_line, choice, jurisdiction, started_at };
}

export class TicketTab {
  /**
   * @param {{key?: string, callId: string|null, card?: object, ticket?: object, relatedTo?: string,
   *          store: import("./local-drafts.js").LocalDrafts, onChange: (tab: TicketTab) => void}} options
   */
  constructor({ key, callId, card = null, ticket = null, relatedTo = null, store, onChange }) {
    // The tab's key is its ticket's id, chosen here before the server has the ticket.
    this.key = key || (ticket ? ticket.id : newTicketId());
    this.callId = callId || (ticket && readPath(ticket.fields, "call_id")) || null;
    this.card = cardLite(card);
    this.relatedTo = relatedTo;
    this.store = store;
    this.onChange = onChange;
    this.openedAt = new Date().toISOString();
    this.ticket = null;
    this.dirty = new Set();
    this.saved = new Map(); // path -> the value the server has, to skip edits that change nothing
    this.problems = null; // null: not validated yet
    this.saveState = () => "";
    this.saveFailed = false;
    this.retryable = false;
    this.notice = null; // {tone: "ok"|"warn"|"bad", describe: () => text}
    this.timer = null;
    this.syncing = null;
    this.syncAgain = false;
    this.completing = false;
    this.fresh = false; // a new call's tab the agent has not looked at yet

    this.form = el("form", { testid: "ticket-form", novalidate: true });
    this.view = new TicketView(this.form);
    const edited = (event) => this.edited(event.target.name);
    this.form.addEventListener("input", edited);
    this.form.addEventListener("change", edited);
    this.form.addEventListener("submit", (event) => event.preventDefault());
    // Leaving a field saves at once, not after the pause.
    this.form.addEventListener("focusout", () => {
      if (this.dirty.size > 0) this.requestSync(0);
    });
    if (ticket) this.show(ticket);
    else this.prefill();
  }

  // ------------------------------------------------------------------ what the tab holds

  /** Something the agent must not lose: typed and unsaved, or a draft on the server. */
  hasWork() {
    return this.dirty.size > 0 || Boolean(this.ticket && this.ticket.status === "draft");
  }

  /** Nothing typed and nothing on the server: a form that can go without losing anything. */
  isBlank() {
    return !this.ticket && this.dirty.size === 0;
  }

  isEditable() {
    return !this.ticket || this.ticket.status === "draft";
  }

  /** "unsaved", "new" (blank), or the ticket's status. */
  tabState() {
    if (this.dirty.size > 0 || this.syncing || this.saveFailed) return "unsaved";
    return this.ticket ? this.ticket.status : "new";
  }

  changed() {
    this.onChange(this);
  }

  // What the call already tells: the caller's choice in the menu, the line, the jurisdiction.
  prefill() {
    const card = this.card || {};
    const set = (path, value) => {
      if (value !== null && value !== undefined && !this.dirty.has(path)) this.view.input(path).value = value;
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

  setCard(card) {
    if (!card || (this.callId && card.call_id !== this.callId)) return;
    this.card = cardLite(card);
  }

  show(ticket) {
    clearTimeout(this.timer);
    this.ticket = ticket;
    this.key = this.key || ticket.id;
    this.dirty.clear();
    this.view.fill((path) => readPath(ticket.fields, path));
    this.saved = new Map(PATHS.map((path) => [path, this.view.value(path)]));
    this.problems = ticket.delivery_problems && ticket.delivery_problems.length ? ticket.delivery_problems : null;
    this.view.setEditable(this.isEditable());
    this.renderProblems();
    if (ticket.status === "draft") this.requestSync(0);
  }

  setTicket(ticket) {
    this.ticket = ticket;
    const keep = new Set(this.dirty);
    const active = document.activeElement;
    if (active && active.name && this.form.contains(active)) keep.add(active.name);
    this.view.fill((path) => readPath(ticket.fields, path), keep);
    this.view.setEditable(this.isEditable());
  }

  /** Put back what a local record kept (after a reload): its values become unsaved edits. */
  restore(record) {
    const values = record.values || {};
    for (const path of record.dirty || []) {
      if (!PATHS.includes(path) || !Object.hasOwn(values, path)) continue;
      const input = this.view.input(path);
      const value = values[path];
      if (input.type === "checkbox") input.checked = value === true;
      else input.value = value === null || value === undefined ? "" : String(value);
      this.dirty.add(path);
    }
    if (record.card && !this.card) this.card = record.card;
    if (record.relatedTo && !this.relatedTo) this.relatedTo = record.relatedTo;
    if (record.openedAt) this.openedAt = record.openedAt;
    this.view.applyRules();
    if (this.dirty.size > 0) {
      this.saveState = () => t("ticketform.restored");
      this.requestSync(0);
    }
  }

  /** Write what is unsaved to localStorage (or forget the record when the server has it all). */
  backup() {
    if (this.ticket && this.dirty.size === 0 && !this.saveFailed) {
      this.store.remove(this.key);
      return;
    }
    if (!this.ticket && this.dirty.size === 0) {
      this.store.remove(this.key);
      return;
    }
    const values = {};
    for (const path of PATHS) values[path] = this.view.value(path);
    this.store.save({
      key: this.key, callId: this.callId, ticketId: this.ticket ? this.ticket.id : null,
      version: this.ticket ? this.ticket.version : null, values, dirty: [...this.dirty],
      card: this.card, relatedTo: this.relatedTo, openedAt: this.openedAt,
    });
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
    this.fresh = false;
    this.view.applyRules();
    this.backup();
    this.requestSync(DEBOUNCE_MS);
    this.changed();
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
      let failure = null;
      do {
        // Every run sends all that is unsaved then: a later run that succeeds makes up for one
        // that failed, so edits made while a run fails are still sent.
        this.syncAgain = false;
        try {
          await this.saveAndValidate();
          failure = null;
        } catch (error) {
          failure = error;
        }
      } while (this.syncAgain);
      if (failure) throw failure;
    })().finally(() => {
      this.syncing = null;
      this.backup();
      if (this.saveFailed && this.retryable) this.requestSync(RETRY_MS);
      this.changed();
    });
    return this.syncing;
  }

  async saveAndValidate() {
    let refused = null; // some fields could not be stored: the rest is saved and checked still
    try {
      await this.save();
    } catch (error) {
      if (!error.partial) throw error;
      refused = error;
    }
    if (this.ticket && this.ticket.status === "draft" && (this.dirty.size === 0 || refused)) {
      const id = this.ticket.id;
      const answer = await post(`/api/desktop/tickets/${encodeURIComponent(id)}/validate`);
      if (this.ticket && this.ticket.id === id) {
        const unstored = refused ? refused.errors : [];
        const fields = new Set(unstored.map((p) => p.field));
        this.problems = [...unstored, ...((answer && answer.problems) || []).filter((p) => !fields.has(p.field))];
        this.renderProblems();
      }
    }
    if (refused) throw refused;
  }

  async save() {
    if (!this.isEditable()) return;
    if (this.ticket && this.dirty.size === 0) return;
    const paths = this.ticket ? [...this.dirty] : PATHS.filter((p) => this.dirty.has(p) || this.view.value(p) !== null);
    if (!this.ticket && this.dirty.size === 0) return; // nothing typed yet: no ticket for a prefill alone
    this.dirty.clear();
    this.saveState = () => t("ticketform.saving");
    this.changed();
    try {
      const values = new Map(paths.map((path) => [path, this.view.value(path)]));
      const created = !this.ticket;
      this.setTicket(await this.sendWhatCanBeStored(paths));
      for (const [path, value] of values) if (!this.dirty.has(path)) this.saved.set(path, value);
      const at = new Date();
      this.saveFailed = false;
      this.backup(); // the record now names the ticket: a reload never creates it twice
      this.saveState = () => t("ticketform.saved_at", { time: formatTime(at) });
      if (created) this.onCreated?.(this);
      this.onSaved?.(this);
    } catch (error) {
      for (const path of paths) if (!error.partial || error.partial.has(path)) this.dirty.add(path);
      if (error.partial && this.ticket) this.onCreated?.(this);
      this.saveFailed = true;
      // The network or the server may be back in a moment; a value refused stays until changed.
      this.retryable = !(error.status >= 400 && error.status < 500) || error.status === 409;
      const message = errorWords(error);
      this.saveState = () => t("ticketform.not_saved", { message });
      if (error.errors && error.errors.length) {
        this.problems = error.errors;
        this.renderProblems();
      }
      throw error;
    }
  }

  /**
   * Send the fields; when some cannot be stored at all (an amount of "a lot"), the others are
   * saved without them, and the refused ones stay unsaved on screen (and in localStorage) with
   * their problem, as the refusal is thrown.
   */
  async sendWhatCanBeStored(paths) {
    try {
      return await this.send(paths);
    } catch (error) {
      const refused = new Set((error.status === 422 && error.errors ? error.errors : []).map((p) => p.field));
      const rest = paths.filter((path) => !refused.has(path));
      if (refused.size === 0 || rest.length === paths.length || rest.length === 0 || ![...refused].every((p) => paths.includes(p))) {
        throw error;
      }
      this.setTicket(await this.send(rest));
      for (const path of rest) this.saved.set(path, this.view.value(path));
      error.partial = refused;
      throw error;
    }
  }

  async send(paths) {
    // The API shows the caller's number of the call masked (138****8000) unless configured
    // otherwise: a masked number is never sent back (it would overwrite the real one).
    const entries = paths.map((path) => [path, this.view.value(path)])
      .filter(([path, value]) => !(path === "caller.phone" && typeof value === "string" && value.includes("*")));
    const fields = nest(entries);
    if (this.ticket && entries.length === 0) return this.ticket;
    if (!this.ticket) return post("/api/desktop/tickets", this.creation(fields));
    const url = `/api/desktop/tickets/${encodeURIComponent(this.ticket.id)}`;
    try {
      return await patch(url, { version: this.ticket.version, fields });
    } catch (error) {
      if (error.status !== 409) throw error;
      // Changed elsewhere since we read it (a refusal coming back, another tab, a save the
      // closing page sent): send our changes once more on top of the current version.
      const current = await get(url);
      this.setTicket(current);
      if (current.status !== "draft") throw error;
      return patch(url, { version: current.version, fields });
    }
  }

  creation(fields) {
    if (this.relatedTo) fields.related_to = this.relatedTo;
    return { id: this.key, call_id: this.callId, fields };
  }

  /** Save pending edits now (best effort: failures stay on screen and in localStorage). */
  async flush() {
    if (this.dirty.size === 0 && !this.syncing) return;
    try {
      await this.sync();
    } catch {
      // shown in the save state already
    }
  }

  /** The page is going away: send the unsaved fields in a request that outlives the page (it
   * is not answered to anyone: localStorage keeps them until the next load has saved them; a
   * ticket created now is created once, by its id, however often its creation is sent). */
  sendBeforeLeaving() {
    if (this.dirty.size === 0 || !this.isEditable()) return;
    this.backup();
    const paths = this.ticket ? [...this.dirty] : PATHS.filter((p) => this.dirty.has(p) || this.view.value(p) !== null);
    const entries = paths.map((path) => [path, this.view.value(path)])
      .filter(([path, value]) => !(path === "caller.phone" && typeof value === "string" && value.includes("*")));
    if (entries.length === 0) return;
    const sent = this.ticket
      ? request("PATCH", `/api/desktop/tickets/${encodeURIComponent(this.ticket.id)}`,
        { version: this.ticket.version, fields: nest(entries) }, { keepalive: true })
      : request("POST", "/api/desktop/tickets", this.creation(nest(entries)), { keepalive: true });
    sent.catch(() => {});
  }

  // ------------------------------------------------------------------ completing and delivery

  async complete() {
    if (this.completing) return;
    this.completing = true;
    this.changed();
    try {
      if (!this.ticket || this.dirty.size > 0) await this.sync();
      else if (this.syncing) await this.syncing;
      if (!this.ticket) return;
      const url = `/api/desktop/tickets/${encodeURIComponent(this.ticket.id)}/complete`;
      const ticket = await post(url, { version: this.ticket.version });
      this.setTicket(ticket);
      this.problems = [];
      this.renderProblems();
      this.setNotice("ok", () => t("ticketform.completed_notice"));
    } catch (error) {
      if (error.status === 422 && error.errors.length) {
        this.problems = error.errors;
        this.renderProblems();
        this.setNotice("bad", () => t("ticketform.fix_problems"));
      } else {
        const message = errorWords(error);
        this.setNotice("bad", () => t("ticketform.error.complete", { message }));
      }
      if (error.status === 409 && this.ticket) await this.reload();
    } finally {
      this.completing = false;
      this.backup();
      this.changed();
    }
  }

  /** ticket.delivered / ticket.refused from the desktop's WebSocket, for this tab's ticket. */
  delivered(fresh, message) {
    this.ticket = fresh;
    if (message.type === "ticket.refused") {
      // Back to draft: the form opens again with the platform's problems on the fields.
      this.view.fill((path) => readPath(fresh.fields, path), new Set(this.dirty));
      this.view.setEditable(this.isEditable());
      const problems = message.problems && message.problems.length ? message.problems : fresh.delivery_problems;
      this.problems = problems || [];
      this.renderProblems();
      this.setNotice("bad", () => t("ticketform.refused_notice"));
    } else {
      const no = fresh.platform_case_no || "";
      this.setNotice("ok", () => t("ticketform.delivered_notice", { no }));
    }
  }

  async reload() {
    try {
      this.setTicket(await get(`/api/desktop/tickets/${encodeURIComponent(this.ticket.id)}`));
    } catch {
      // the notice already says what failed
    }
  }

  setNotice(tone, describe) {
    this.notice = describe ? { tone, describe } : null;
    this.changed();
  }

  // ------------------------------------------------------------------ rendering its own form

  /** The problems next to their fields; the others (no field of the form) are returned. */
  renderProblems() {
    return this.view.showProblems(this.problems || []);
  }

  retranslate() {
    applyTranslations(this.form);
  }
}
