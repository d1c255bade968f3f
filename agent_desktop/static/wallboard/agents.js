// The agents in scope with their state and time in it, and — for an agent on a call — the
// supervisor's listen / whisper / barge buttons (POST /api/wallboard/monitor: the server
// rings the supervisor's own phone with the call mixed in). One monitor at a time.

import { del, post } from "../lib/api.js";
import { byTestId, el, secondsSince, setText, show, syncChildren } from "../lib/dom.js";
import { formatDuration, t, tEnum } from "../lib/i18n.js";
import { regionName } from "./map.js";

const MODES = ["listen", "whisper", "barge"];
const MODE_LABEL = { listen: "monitor.listen", whisper: "monitor.whisper", barge: "monitor.barge" };
const MODE_STATUS = { listen: "monitor.status.listen", whisper: "monitor.status.whisper", barge: "monitor.status.barge" };

export class AgentsTable {
  constructor() {
    this.agents = [];
    this.active = null; // {monitor_id, agent, mode}
    this.busy = false;
    this.error = null;
    byTestId("monitor-stop").addEventListener("click", () => this.stopMonitor());
  }

  render(agents) {
    this.agents = agents || [];
    const body = byTestId("wallboard-agents").tBodies[0];
    const rows = new Map([...body.rows].map((row) => [row.dataset.agentId, row]));
    const wanted = this.agents.map((agent) => this.row(rows.get(agent.agent_id), agent));
    syncChildren(body, wanted);
    byTestId("wallboard-agents").hidden = wanted.length === 0;
    show("wallboard-no-agents", wanted.length === 0);
    this.renderMonitor();
  }

  row(existing, agent) {
    const id = agent.agent_id;
    const row = existing || el("tr", { testid: `agent-${id}`, dataset: { agentId: id } },
      el("th", { scope: "row", class: "name-cell" }), el("td", { class: "name-cell" }),
      el("td", {}, el("span", { class: "state-badge", testid: `agent-state-${id}` })),
      el("td", { class: "num", testid: `agent-since-${id}` }),
      el("td", { class: "monitor-col" }, el("div", { class: "monitor-buttons", testid: `agent-monitor-${id}` })));
    row.dataset.since = agent.since || "";
    row.dataset.state = agent.state;
    // The id beside the name for the desk's own screen; a wall shows the name alone.
    const name = agent.display_name || id;
    row.cells[0].replaceChildren(name, el("span", { class: "agent-id" }, id));
    row.cells[0].title = `${name} (${id})`;
    const where = regionName(agent.jurisdiction, agent.jurisdiction_name || agent.jurisdiction || "");
    row.cells[1].textContent = where;
    row.cells[1].title = where;
    const badge = row.cells[2].firstChild;
    badge.textContent = tEnum("agent_state", agent.state);
    badge.dataset.state = agent.state;
    this.renderSince(row);
    this.renderButtons(row.cells[4].firstChild, agent);
    return row;
  }

  renderSince(row) {
    const since = secondsSince(row.dataset.since);
    row.cells[3].textContent = since === null ? "" : formatDuration(since);
  }

  /** Once a second: the "since" column. */
  tick() {
    for (const row of byTestId("wallboard-agents").tBodies[0].rows) this.renderSince(row);
  }

  // Buttons only while the agent is on a call; rebuilt only when that call changes.
  renderButtons(cell, agent) {
    const callId = agent.state === "on_call" && agent.call_id ? agent.call_id : "";
    if (cell.dataset.callId !== callId || cell.dataset.lang !== document.documentElement.lang) {
      cell.dataset.callId = callId;
      cell.dataset.lang = document.documentElement.lang;
      cell.replaceChildren(...(callId ? MODES.map((mode) => {
        const button = el("button", { type: "button", testid: `monitor-${mode}-${agent.agent_id}`, dataset: { mode } },
          t(MODE_LABEL[mode]));
        button.addEventListener("click", () => this.startMonitor(agent, mode));
        return button;
      }) : []));
    }
    for (const button of cell.querySelectorAll("button")) button.disabled = this.busy || Boolean(this.active);
  }

  async startMonitor(agent, mode) {
    this.busy = true;
    this.setError(null);
    this.refreshButtons();
    try {
      const answer = await post("/api/wallboard/monitor", { call_id: agent.call_id, mode });
      this.active = { monitor_id: answer.monitor_id, agent, mode };
    } catch (error) {
      this.setError(error);
    } finally {
      this.busy = false;
      this.renderMonitor();
    }
  }

  async stopMonitor() {
    if (!this.active) return;
    this.busy = true;
    this.renderMonitor();
    try {
      await del(`/api/wallboard/monitor/${encodeURIComponent(this.active.monitor_id)}`);
      this.active = null;
    } catch (error) {
      if (error.status === 404) this.active = null; // already over (the call ended)
      else this.setError(error);
    } finally {
      this.busy = false;
      this.renderMonitor();
    }
  }

  renderMonitor() {
    const active = this.active;
    // The monitored call ended: the server has torn the monitor down with it.
    const stillOnIt = (a) => a.agent_id === active.agent.agent_id && a.state === "on_call" && a.call_id === active.agent.call_id;
    if (active && !this.busy && !this.agents.some(stillOnIt)) {
      this.active = null;
    }
    show("monitor-panel", Boolean(this.active));
    if (this.active) {
      const { agent, mode } = this.active;
      const node = setText("monitor-status", t(MODE_STATUS[mode], { agent: agent.display_name || agent.agent_id }));
      node.dataset.mode = mode;
      node.dataset.monitorId = this.active.monitor_id;
    }
    byTestId("monitor-stop").disabled = this.busy;
    this.refreshButtons();
    const box = show("monitor-error", Boolean(this.error));
    box.textContent = this.error ? this.error() : "";
  }

  refreshButtons() {
    for (const row of byTestId("wallboard-agents").tBodies[0].rows) {
      for (const button of row.cells[4].querySelectorAll("button")) button.disabled = this.busy || Boolean(this.active);
    }
  }

  setError(error) {
    if (!error) {
      this.error = null;
      return;
    }
    const message = error.message;
    this.error = () => t("monitor.error", { message });
  }
}
