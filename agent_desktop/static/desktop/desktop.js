// The agent desktop: puts the pieces together. The desktop state (GET /api/desktop/state, and
// pushed over /api/desktop/ws) drives the header, the call card and the phone; the call card
// opens the call's ticket in its own tab of the ticket panel (ticket.js), which keeps every
// other open ticket and the agent's drafts. After a reconnect the state is read again, since
// messages sent while the socket was down are not replayed.

import { errorWords, get } from "../lib/api.js";
import { byTestId, setText } from "../lib/dom.js";
import { onLanguageChange, t } from "../lib/i18n.js";
import { checkSession, startSignedInPage } from "../lib/session.js";
import { LiveSocket } from "../lib/ws.js";
import { AgentBar } from "./agentbar.js";
import { CallCard } from "./callcard.js";
import { createPhone } from "./phone.js";
import { TicketDesk } from "./ticket.js";

let user = null;
let phone = null;
// The browser's phone ({status, reason, params, retryAt}: see phone.js), and the server's view of
// it (Asterisk's endpoint state, in the desktop state's phone.endpoint).
let phoneStatus = { status: "off" };
let phoneMode = null;
let phoneEndpoint = null;
let card = null;
let socketStatus = "connecting";
let pageError = null;

const agentBar = new AgentBar(applyState, (describe) => showAgentError(describe));
const callCard = new CallCard({ phone: () => phone, onState: applyState });
const tickets = new TicketDesk(byTestId("ticket-panel"), byTestId("drafts-panel"));
agentBar.onRetry = () => phone && phone.retryNow();

let agentError = null;
function showAgentError(describe) {
  agentError = describe;
  const box = byTestId("agent-error");
  box.textContent = describe ? describe() : "";
  box.hidden = !describe;
}

function showPageError(describe) {
  pageError = describe;
  const box = byTestId("page-error");
  box.textContent = describe ? describe() : "";
  box.hidden = !describe;
}

// ---------------------------------------------------------------------- the state

// An action's answer can arrive after newer "state" messages (the answer was computed before
// the call's events were handled): a state older than the one shown is not applied.
let shownSince = null;
function isOlderThanShown(state) {
  const since = Date.parse(state.agent.since);
  return shownSince !== null && !Number.isNaN(since) && since < shownSince;
}

/** Apply a desktop state (GET, an action's answer, or a "state" message). */
function applyState(state) {
  if (!state || !state.agent || isOlderThanShown(state)) return;
  const since = Date.parse(state.agent.since);
  shownSince = Number.isNaN(since) ? null : since;
  agentBar.render(state.agent);
  if (state.call) showCard(state.call);
  else if (card && card.state !== "ended") showCard({ ...card, state: "ended" });
  ensurePhone(state.phone);
}

// An ended call stays on screen (greyed) so that its ticket can be finished in wrap-up.
function showCard(next) {
  card = next;
  callCard.render(card);
  if (card) tickets.openCall(card);
}

async function refreshState() {
  try {
    applyState(await get("/api/desktop/state"));
    showPageError(null);
  } catch (error) {
    if (error.status !== 401) {
      const message = errorWords(error);
      showPageError(() => t("desktop.error.state", { message }));
    }
  }
}

function ensurePhone(info) {
  if (!info) return;
  phoneMode = info.mode;
  phoneEndpoint = info.endpoint || null;
  if (phone) {
    renderPhone(); // the server's view of the phone may have changed
    return;
  }
  phone = createPhone(info, byTestId("remote-audio"));
  if (!phone) {
    setPhoneStatus({ status: "unconfigured" }); // SIP mode without an account for this agent
    return;
  }
  // A SIP phone starts asynchronously, the simulated one at once (no promise).
  Promise.resolve().then(() => phone.start(setPhoneStatus)).catch((error) => {
    console.error("phone failed to start", error);
    const message = String((error && error.message) || error);
    setPhoneStatus({ status: "error", reason: "phone.reason.start_failed", params: { message } });
  });
}

const PHONE_STATUS = {
  off: "phone.status.off",
  simulated: "phone.status.simulated",
  connecting: "phone.status.connecting",
  registered: "phone.status.registered",
  unregistered: "phone.status.unregistered",
  disconnected: "phone.status.disconnected",
  ringing: "phone.status.ringing",
  in_call: "phone.status.in_call",
  error: "phone.status.error",
  unconfigured: "phone.status.unconfigured",
};

function setPhoneStatus(status) {
  phoneStatus = typeof status === "string" ? { status } : status;
  renderPhone();
}

function renderPhone() {
  const status = phoneStatus.status;
  const node = setText("phone-status", t(PHONE_STATUS[status] || "phone.status.error"));
  node.dataset.status = status;
  agentBar.setPhone(phoneMode ? { mode: phoneMode, ...phoneStatus, endpoint: phoneEndpoint } : null);
}

// ---------------------------------------------------------------------- live messages

function onMessage(message) {
  switch (message.type) {
    case "state":
      applyState(message.agent ? message : message.state || message.body);
      break;
    case "call.offered":
      if (message.card) showCard(message.card);
      announceCall();
      break;
    case "call.connected":
      if (message.card) showCard(message.card);
      else if (card && (!message.call_id || message.call_id === card.call_id)) showCard({ ...card, state: "connected" });
      break;
    case "call.ended":
      if (card && (!message.call_id || message.call_id === card.call_id)) showCard({ ...card, state: "ended" });
      break;
    case "call.held":
    case "call.resumed":
      // The phone held or resumed the call (the server now plays or stops the caller's music).
      if (card && (!message.call_id || message.call_id === card.call_id)) {
        showCard({ ...card, on_hold: message.type === "call.held" });
      }
      break;
    case "ticket.delivered":
    case "ticket.refused":
      tickets.deliveryNews(message);
      break;
    default:
      break; // a newer server's message: ignore
  }
}

// The browser tab may be in the background: say it in the title too.
function announceCall() {
  document.title = t("desktop.title_ringing");
  setTimeout(() => {
    document.title = t("desktop.page_title");
  }, 10000);
}

const SOCKET_STATUS = { connecting: "live.connecting", open: "live.open", closed: "live.closed" };

function setSocketStatus(status) {
  socketStatus = status;
  const node = setText("ws-status", t(SOCKET_STATUS[status]));
  node.dataset.status = status;
  if (status === "closed") checkSession();
}

// ---------------------------------------------------------------------- start

async function main() {
  try {
    user = await startSignedInPage(["agent"]);
  } catch (error) {
    document.body.classList.remove("loading");
    const message = errorWords(error);
    showPageError(() => t("error.start", { message }));
    return;
  }
  const renderUser = () => {
    setText("agent-name", user.display_name || user.username);
    setText("agent-id", user.agent_id ? t("desktop.agent_id", { id: user.agent_id }) : "");
  };
  renderUser();
  renderPhone();
  setSocketStatus(socketStatus);
  onLanguageChange(() => {
    renderUser();
    renderPhone();
    setSocketStatus(socketStatus);
    showAgentError(agentError);
    showPageError(pageError);
    agentBar.render(agentBar.agent);
    callCard.render(card);
  });
  setInterval(() => agentBar.tick(), 1000);
  // The tabs the agent had open (and what they typed that the server does not have yet) first,
  // so that the current call finds its tab among them.
  await tickets.start(user.agent_id || user.username);
  await refreshState();
  new LiveSocket("/api/desktop/ws", {
    onMessage,
    onOpen: () => {
      // Also after a reconnect: messages missed meanwhile are not replayed; saves that failed
      // while the connection was down are sent again.
      refreshState();
      tickets.refreshDrafts();
      tickets.flushAll();
    },
    onStatus: setSocketStatus,
    onRefused: () => checkSession(),
  }).start();
  window.addEventListener("pagehide", () => phone && phone.stop());
}

main();
