// The agent's phone. Two kinds behind one interface (answer, hangup, hold, mute):
// - "sip": the browser is the phone. SIP.js (bundled from npm into ../vendor/sip.js) registers
//   to Asterisk over WSS with the account the API gives; the queue rings the agent's endpoint,
//   the INVITE arrives here, and answer/hang-up/hold/mute are SIP operations; the caller's
//   voice plays in an <audio> element.
// - "simulated" (demo, tests; no media): the buttons ask our API to act on the call over ARI.
// Each operation resolves to the desktop state when the API answered with one, else null (the
// state then arrives over the desktop's WebSocket).
//
// The phone reports its status as {status, reason, params, retryAt}: status "connecting",
// "registered", "disconnected" (reason: why; retryAt: when it tries again), "ringing",
// "in_call", "error" (it cannot work at all: no retry), or "simulated". A SIP phone that cannot
// connect or register, or whose WebSocket drops, tries again by itself: after 1 s, then 2, 4 ...
// up to 30 s, and from 1 s again once registered. Until it is registered Asterisk cannot ring
// it, so the agent bar keeps the agent from going available (and the server refuses too).

import { post } from "../lib/api.js";

export class PhoneError extends Error {
  /** @param {string} key i18n key of the explanation */
  constructor(key) {
    super(key);
    this.key = key;
  }
}

class SimulatedPhone {
  constructor() {
    this.mode = "simulated";
  }

  start(onStatus) {
    onStatus({ status: "simulated" });
  }

  retryNow() {}

  answer() {
    return post("/api/desktop/call/answer");
  }

  hangup() {
    return post("/api/desktop/call/hangup");
  }

  hold(on) {
    return post("/api/desktop/call/hold", { on });
  }

  mute(on) {
    return post("/api/desktop/call/mute", { on });
  }

  stop() {}
}

export const FIRST_RETRY_MS = 1000;
export const MAX_RETRY_MS = 30000;

/** Why a REGISTER was refused, from its SIP status code: an i18n key of phone.reason. */
function refusalReason(code) {
  if (code === 401 || code === 403 || code === 407) return "phone.reason.auth";
  if (code === 404) return "phone.reason.no_such_account";
  if (code === 408) return "phone.reason.timeout";
  return "phone.reason.refused";
}

class SipPhone {
  constructor(account, audio) {
    this.mode = "sip";
    this.account = account;
    this.audio = audio;
    this.sip = null;
    this.userAgent = null;
    this.registerer = null;
    this.session = null;
    this.muted = false;
    this.stopped = false;
    this.started = false; // the user agent has been started once (later: reconnect)
    this.attempting = false; // connecting or waiting for the REGISTER's answer
    this.retryMs = FIRST_RETRY_MS;
    this.retryTimer = null;
    this.retryAt = null;
    this.reason = null; // {key, params} of the last failure
    this.onStatus = () => {};
  }

  report(status, reason = null) {
    this.onStatus({
      status,
      reason: reason ? reason.key : null,
      params: reason ? reason.params : {},
      retryAt: status === "disconnected" ? this.retryAt : null,
    });
  }

  async start(onStatus) {
    this.onStatus = onStatus;
    this.report("connecting");
    try {
      // Loaded only in SIP mode: the simulated desktop needs none of it.
      this.sip = await import("../vendor/sip.js");
    } catch (error) {
      // The bundle is built by scripts/build_web.sh; without it there is no phone at all, and
      // trying again will not help until it is built and the page reloaded.
      // The agent is told to ask an administrator; the console says what the administrator does.
      console.error("the SIP.js bundle did not load: build it with scripts/build_web.sh, then reload", error);
      this.report("error", { key: "phone.reason.no_bundle", params: {} });
      return;
    }
    const { UserAgent, Registerer, RegistererState } = this.sip;
    const uri = UserAgent.makeURI(this.account.uri);
    if (!uri) {
      this.report("error", { key: "phone.reason.bad_account", params: {} });
      return;
    }
    this.userAgent = new UserAgent({
      uri,
      displayName: this.account.display_name,
      authorizationUsername: uri.user,
      authorizationPassword: this.account.password,
      transportOptions: { server: this.account.ws_url },
      // No STUN server: the centre's network reaches Asterisk directly, and nothing may be
      // fetched from outside it.
      sessionDescriptionHandlerFactoryOptions: { peerConnectionConfiguration: { iceServers: [] } },
      logLevel: "warn",
      delegate: {
        onInvite: (invitation) => this.incoming(invitation),
        // Called with an error only when the connection was lost, not when we closed it.
        onDisconnect: (error) => {
          if (error) this.retry("phone.reason.ws_dropped");
        },
      },
    });
    this.registerer = new Registerer(this.userAgent);
    this.registerer.stateChange.addListener((state) => {
      if (state === RegistererState.Registered) this.registered();
      // A refresh refused or a registration that expired; during an attempt the attempt says why.
      else if (state === RegistererState.Unregistered && !this.attempting) this.retry("phone.reason.registration_lost");
    });
    await this.attempt();
  }

  async attempt() {
    this.retryTimer = null;
    if (this.stopped) return;
    this.attempting = true;
    this.report("connecting");
    try {
      if (!this.started) {
        this.started = true;
        await this.userAgent.start();
      } else if (!this.userAgent.isConnected()) {
        await this.userAgent.reconnect();
      }
    } catch (error) {
      console.warn("phone: connecting failed", error);
      this.retry("phone.reason.ws_failed", { server: this.account.ws_url });
      return;
    }
    try {
      await this.registerer.register({
        requestDelegate: {
          // Registering again while still "Registered" (after a dropped WebSocket) changes no
          // state, so the answer itself says we are back.
          onAccept: () => this.registered(),
          onReject: (response) => {
            const code = response.message.statusCode;
            this.retry(refusalReason(code), { code: String(code) });
          },
        },
      });
    } catch (error) {
      console.warn("phone: REGISTER could not be sent", error);
      this.retry("phone.reason.register_failed");
    }
  }

  registered() {
    this.attempting = false;
    this.retryMs = FIRST_RETRY_MS;
    this.reason = null;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.retryAt = null;
    this.report(this.session ? "in_call" : "registered");
  }

  /** Try again later, each time waiting twice as long (at most MAX_RETRY_MS). */
  retry(key, params = {}) {
    if (this.stopped) return;
    this.attempting = false;
    this.reason = { key, params };
    if (this.retryTimer === null) {
      const delay = this.retryMs;
      this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
      this.retryAt = Date.now() + delay;
      this.retryTimer = setTimeout(() => this.attempt(), delay);
    }
    // Several failures of one attempt (a refusal after a drop) share one retry: the last says why.
    this.report("disconnected", this.reason);
  }

  /** The agent does not want to wait for the next try. */
  retryNow() {
    if (this.stopped || this.retryTimer === null) return;
    clearTimeout(this.retryTimer);
    this.attempt();
  }

  /** The status to show when no call is on the phone. */
  idle() {
    if (this.retryTimer !== null) this.report("disconnected", this.reason);
    else if (this.registerer && this.registerer.state === this.sip.RegistererState.Registered) this.report("registered");
    else this.report("connecting");
  }

  incoming(invitation) {
    if (this.session) {
      invitation.reject({ statusCode: 486 }); // one call at a time
      return;
    }
    const { SessionState } = this.sip;
    this.session = invitation;
    this.muted = false;
    this.report("ringing");
    invitation.stateChange.addListener((state) => {
      if (state === SessionState.Established) {
        this.playRemoteAudio(invitation);
        this.report("in_call");
      } else if (state === SessionState.Terminated) {
        if (this.session === invitation) this.session = null;
        this.audio.srcObject = null;
        this.idle();
      }
    });
  }

  playRemoteAudio(session) {
    const handler = session.sessionDescriptionHandler;
    if (!handler) return;
    this.audio.srcObject = handler.remoteMediaStream;
    this.audio.play().catch(() => {
      // autoplay refused until the page is clicked: the Answer click usually counts
    });
  }

  async answer() {
    const { SessionState } = this.sip || {};
    if (!this.session || this.session.state !== SessionState.Initial) throw new PhoneError("phone.error.not_ringing");
    await this.session.accept({
      sessionDescriptionHandlerOptions: { constraints: { audio: true, video: false } },
    });
    return null;
  }

  async hangup() {
    const session = this.session;
    if (!session) return post("/api/desktop/call/hangup"); // no SIP leg here: let the server end it
    const { SessionState } = this.sip;
    if (session.state === SessionState.Initial || session.state === SessionState.Establishing) {
      await session.reject();
    } else if (session.state === SessionState.Established) {
      await session.bye();
    }
    return null;
  }

  established() {
    const { SessionState } = this.sip || {};
    if (!this.session || this.session.state !== SessionState.Established) throw new PhoneError("phone.error.no_call");
    return this.session;
  }

  // Hold is a re-INVITE offering sendonly media: Asterisk then plays music to the caller.
  async hold(on) {
    const session = this.established();
    await new Promise((resolve, reject) => {
      session
        .invite({
          sessionDescriptionHandlerOptions: { hold: on },
          requestDelegate: {
            onAccept: () => resolve(),
            onReject: () => reject(new PhoneError("phone.error.hold_refused")),
          },
        })
        .catch(reject);
    });
    const handler = session.sessionDescriptionHandler;
    handler.enableReceiverTracks(!on);
    handler.enableSenderTracks(!on && !this.muted);
    return null;
  }

  // Mute stays in the browser: the microphone track is disabled, nothing is signalled.
  async mute(on) {
    const session = this.established();
    this.muted = on;
    session.sessionDescriptionHandler.enableSenderTracks(!on);
    return null;
  }

  async stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    try {
      if (this.registerer && this.registerer.state === this.sip.RegistererState.Registered) {
        await this.registerer.unregister();
      }
      if (this.userAgent) await this.userAgent.stop();
    } catch {
      // leaving the page: nothing more to do
    }
  }
}

/**
 * The phone for the desktop state's `phone` ({mode, sip}); null when SIP is configured but
 * the account is not known yet.
 */
export function createPhone(phone, audio) {
  if (!phone || phone.mode !== "sip") return new SimulatedPhone();
  if (!phone.sip) return null;
  return new SipPhone(phone.sip, audio);
}
