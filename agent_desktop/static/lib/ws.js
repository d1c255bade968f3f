// A WebSocket to our server that comes back by itself: after a drop it reconnects with a
// growing, jittered delay (so that a restarted server is not hit by every screen at once),
// and reports its status so the page can show "live" / "reconnecting".

const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 15000;

function socketUrl(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

export class LiveSocket {
  /**
   * @param {string} path e.g. "/api/desktop/ws"
   * @param {{onMessage: (msg: object) => void, onOpen?: () => void,
   *          onStatus?: (status: "connecting"|"open"|"closed") => void,
   *          onRefused?: (event: CloseEvent) => void}} handlers
   *   onRefused: the server closed with a 44xx code (not allowed): no reconnect.
   */
  constructor(path, handlers) {
    this.path = path;
    this.handlers = handlers;
    this.socket = null;
    this.delay = FIRST_DELAY_MS;
    this.timer = null;
    this.stopped = true;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) {
      const socket = this.socket;
      this.socket = null;
      socket.close(1000);
    }
    this.status("closed");
  }

  /** Follow another path (the wallboard drilling down): reconnects at once. */
  setPath(path) {
    if (path === this.path && this.socket) return;
    this.path = path;
    if (this.stopped) return;
    clearTimeout(this.timer);
    if (this.socket) {
      const socket = this.socket;
      this.socket = null;
      socket.close(1000);
    }
    this.delay = FIRST_DELAY_MS;
    this.connect();
  }

  status(value) {
    if (this.handlers.onStatus) this.handlers.onStatus(value);
  }

  connect() {
    this.status("connecting");
    const socket = new WebSocket(socketUrl(this.path));
    this.socket = socket;
    socket.addEventListener("open", () => {
      if (socket !== this.socket) return;
      this.delay = FIRST_DELAY_MS;
      this.status("open");
      if (this.handlers.onOpen) this.handlers.onOpen();
    });
    socket.addEventListener("message", (event) => {
      if (socket !== this.socket) return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return; // not ours: ignore rather than break the screen
      }
      this.handlers.onMessage(message);
    });
    socket.addEventListener("close", (event) => {
      if (socket !== this.socket) return; // replaced on purpose (setPath/stop)
      this.socket = null;
      this.status("closed");
      if (this.stopped) return;
      if (event.code >= 4400 && event.code < 4500 && this.handlers.onRefused) {
        this.handlers.onRefused(event);
        return;
      }
      this.scheduleReconnect();
    });
  }

  scheduleReconnect() {
    const wait = this.delay / 2 + Math.random() * (this.delay / 2);
    this.delay = Math.min(this.delay * 2, MAX_DELAY_MS);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (!this.stopped) this.connect();
    }, wait);
  }
}
