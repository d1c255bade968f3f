// What the agent typed and the server does not have yet, kept in this browser's localStorage,
// per agent and per tab of the ticket panel: text typed while a call still rang (before the
// server had a ticket for it), edits not yet saved when the page was closed, the network down,
// or a field the server could not store. Every edit is written here at once; a tab's record
// goes when the server has all of it. The list of open tabs is kept too, so that a reload or
// a new login restores them.

const PREFIX = "hotline.desk";

function storage() {
  try {
    return window.localStorage;
  } catch {
    return null; // storage disabled by policy: the server's drafts still hold what was saved
  }
}

export class LocalDrafts {
  /** @param {string} agentId whose records these are (another agent on this browser has theirs) */
  constructor(agentId) {
    this.base = `${PREFIX}.${agentId || "unknown"}`;
  }

  tabKey(key) {
    return `${this.base}.tab.${key}`;
  }

  /**
   * Keep a tab's unsaved work: {key, callId, ticketId, version, values: {path: value},
   * dirty: [path], card: {...}, at}.
   */
  save(record) {
    const store = storage();
    if (!store) return;
    try {
      store.setItem(this.tabKey(record.key), JSON.stringify({ ...record, at: Date.now() }));
    } catch {
      // full or refused: the server's copy is the one left
    }
  }

  remove(key) {
    const store = storage();
    if (!store) return;
    try {
      store.removeItem(this.tabKey(key));
    } catch {
      // nothing to do
    }
  }

  read(key) {
    const store = storage();
    if (!store) return null;
    try {
      const text = store.getItem(this.tabKey(key));
      return text ? JSON.parse(text) : null;
    } catch {
      return null;
    }
  }

  /** Every tab record of this agent, oldest first. */
  all() {
    const store = storage();
    if (!store) return [];
    const prefix = `${this.base}.tab.`;
    const records = [];
    for (let i = 0; i < store.length; i += 1) {
      const name = store.key(i);
      if (!name || !name.startsWith(prefix)) continue;
      const record = this.read(name.slice(prefix.length));
      if (record && record.key) records.push(record);
    }
    return records.sort((a, b) => (a.at || 0) - (b.at || 0));
  }

  /** The open tabs ({key, ticketId, callId} each) and the active one's key. */
  saveOpen(tabs, active) {
    const store = storage();
    if (!store) return;
    try {
      store.setItem(`${this.base}.open`, JSON.stringify({ tabs, active }));
    } catch {
      // not remembered: the drafts list still has every draft
    }
  }

  readOpen() {
    const store = storage();
    if (!store) return { tabs: [], active: null };
    try {
      const doc = JSON.parse(store.getItem(`${this.base}.open`) || "null");
      return doc && Array.isArray(doc.tabs) ? doc : { tabs: [], active: null };
    } catch {
      return { tabs: [], active: null };
    }
  }
}
