// The streams one tenant can be read as. Each has its own checkpoint, lock and coverage; all share the tenant's
// Graph budget. Sign-in streams land in sign_ins (with their event type), directory audits in directory_audits.

import type { StreamSpec } from "./reader.ts";

export const STREAM_NAMES = [
  "interactiveUser",
  "nonInteractiveUser",
  "servicePrincipal",
  "managedIdentity",
  "directoryAudits",
] as const;

export type StreamName = (typeof STREAM_NAMES)[number];

const betaSignIns = (type: string): StreamSpec => ({
  name: type,
  version: "beta",
  resource: "signIns",
  extraFilter: `signInEventTypes/any(t: t eq '${type}')`,
});

export const STREAMS: Record<StreamName, StreamSpec> = {
  // v1.0 returns interactive (and federated) sign-ins only, and needs no filter.
  interactiveUser: { name: "interactiveUser", version: "v1.0", resource: "signIns" },
  // The other sign-in types are beta-only, one type per query (Graph refuses to combine user and SP types).
  nonInteractiveUser: betaSignIns("nonInteractiveUser"),
  servicePrincipal: betaSignIns("servicePrincipal"),
  managedIdentity: betaSignIns("managedIdentity"),
  directoryAudits: { name: "directoryAudits", version: "v1.0", resource: "directoryAudits" },
};

export function isStreamName(name: string): name is StreamName {
  return (STREAM_NAMES as readonly string[]).includes(name);
}
