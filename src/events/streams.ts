// The streams one tenant can be read as. Each has its own checkpoint, lock and coverage; all share the tenant's
// Graph budget. Sign-in streams land in sign_ins (with their event type), directory audits in directory_audits.

/** What a stream reads: the query a reader sends for it. */
export interface StreamSpec {
  /** Stored in the rows' `stream` column and used as the checkpoint and lock key. */
  name: string;
  version: "v1.0" | "beta";
  resource: "signIns" | "directoryAudits";
  extraFilter?: string;
}

export const STREAM_NAMES = [
  "interactiveUser",
  "nonInteractiveUser",
  "servicePrincipal",
  "managedIdentity",
  "directoryAudits",
] as const;

export type StreamName = (typeof STREAM_NAMES)[number];

/** Graph API versions the interactive stream can be read from (INTERACTIVE_API_VERSION). */
export const INTERACTIVE_API_VERSIONS = ["beta", "v1.0"] as const;
export type InteractiveApiVersion = (typeof INTERACTIVE_API_VERSIONS)[number];

const betaSignIns = (type: string): StreamSpec => ({
  name: type,
  version: "beta",
  resource: "signIns",
  extraFilter: `signInEventTypes/any(t: t eq '${type}')`,
});

// The other sign-in types are beta-only, one type per query (Graph refuses to combine user and SP types).
// Interactive sign-ins come from beta too by default: v1.0 omits authenticationDetails, authenticationRequirement,
// authenticationProtocol, originalTransferMethod, userAgent, autonomousSystemNumber, incomingTokenType, userType …,
// which MFA, device-code and token detections need (docs/detections.md). v1.0 (no filter: it returns interactive
// sign-ins only) stays available for tenants that must avoid beta; each row records its api_version.
const INTERACTIVE: Record<InteractiveApiVersion, StreamSpec> = {
  beta: betaSignIns("interactiveUser"),
  "v1.0": { name: "interactiveUser", version: "v1.0", resource: "signIns" },
};

/** The spec of a stream, with the interactive stream read from the given API version. */
export function streamSpec(name: StreamName, interactiveVersion: InteractiveApiVersion = "beta"): StreamSpec {
  return name === "interactiveUser" ? INTERACTIVE[interactiveVersion] : STREAMS[name];
}

/** The default catalogue (interactive sign-ins from beta). */
export const STREAMS: Record<StreamName, StreamSpec> = {
  interactiveUser: INTERACTIVE.beta,
  nonInteractiveUser: betaSignIns("nonInteractiveUser"),
  servicePrincipal: betaSignIns("servicePrincipal"),
  managedIdentity: betaSignIns("managedIdentity"),
  directoryAudits: { name: "directoryAudits", version: "v1.0", resource: "directoryAudits" },
};

export function isStreamName(name: string): name is StreamName {
  return (STREAM_NAMES as readonly string[]).includes(name);
}
