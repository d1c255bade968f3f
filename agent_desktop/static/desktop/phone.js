// The agent's phone. Two kinds behind one interface (answer, hangup, hold, mute):
// - "sip": the browser is the phone. SIP.js (bundled from npm into ../vendor/sip.js) registers
//   to Asterisk over WSS with the account the API gives; the queue rings the agent's endpoint,
//   the INVITE arrives here, and answer/hang-up/hold/mute are SIP operations; the caller's
//   voice plays in an <audio> element.
// - "simulated" (demo, tests; no media): the buttons ask our API to act on the call over ARI.
// Each operation resolves to the desktop state when the API answered with one, else null (the
// state then arrives over the desktop's WebSocket).

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
    onStatus("simulated");
  }

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

const RECONNECT_MS = 5000;

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
    this.onStatus = () => {};
  }

  async start(onStatus) {
    this.onStatus = onStatus;
    onStatus("connecting");
    // Loaded only in SIP mode: the simulated desktop needs none of it.
    this.sip = await import("../vendor/sip.js");
    const { UserAgent, Registerer, RegistererState } = this.sip;
    const uri = UserAgent.makeURI(this.account.uri);
    if (!uri) throw new PhoneError("phone.error.bad_account");
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
        onDisconnect: (error) => this.disconnected(error),
      },
    });
    this.registerer = new Registerer(this.userAgent);
    this.registerer.stateChange.addListener((state) => {
      if (state === RegistererState.Registered) this.onStatus(this.session ? "in_call" : "registered");
      else if (state === RegistererState.Unregistered) this.onStatus("unregistered");
    });
    await this.userAgent.start();
    await this.registerer.register();
  }

  disconnected(error) {
    if (this.stopped || !error) return;
    this.onStatus("disconnected");
    setTimeout(async () => {
      if (this.stopped) return;
      try {
        await this.userAgent.reconnect();
        await this.registerer.register();
      } catch {
        this.disconnected(error);
      }
    }, RECONNECT_MS);
  }

  incoming(invitation) {
    if (this.session) {
      invitation.reject({ statusCode: 486 }); // one call at a time
      return;
    }
    const { SessionState } = this.sip;
    this.session = invitation;
    this.muted = false;
    this.onStatus("ringing");
    invitation.stateChange.addListener((state) => {
      if (state === SessionState.Established) {
        this.playRemoteAudio(invitation);
        this.onStatus("in_call");
      } else if (state === SessionState.Terminated) {
        if (this.session === invitation) this.session = null;
        this.audio.srcObject = null;
        this.onStatus("registered");
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
    try {
      if (this.registerer) await this.registerer.unregister();
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
