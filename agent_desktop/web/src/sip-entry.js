// The part of SIP.js the desktop's phone (static/desktop/phone.js) uses, re-exported so that
// esbuild bundles only what is reachable from here into one ES module.
export {
  Invitation,
  Registerer,
  RegistererState,
  SessionState,
  UserAgent,
  UserAgentState,
} from "sip.js";
export { version as sipVersion } from "sip.js";
