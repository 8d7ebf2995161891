// Which API an archived event came from, and the mapping of the retired Azure AD Graph sign-in shape
// (graph.windows.net …/activities/signinEvents, as saved by the 2016 PowerShell sample) to Graph's signIn.

import { isGraphDateTime } from "../events/classify.ts";
import { isAzureMonitorRecord } from "./azure-monitor.ts";

export type EventShape = "graphSignIn" | "azureAdGraph" | "graphDirectoryAudit" | "azureMonitor" | "unknown";

export const SHAPE_LABELS: Record<EventShape, string> = {
  graphSignIn: "Microsoft Graph signIn",
  azureAdGraph: "Azure AD Graph signinEvents (legacy 2016 sample)",
  graphDirectoryAudit: "Microsoft Graph directoryAudit",
  azureMonitor: "Azure Monitor diagnostic-settings records",
  unknown: "unknown",
};

/** Marks an event mapped from another API; the value names the API. Kept in raw. */
export const SOURCE_KEY = "@signinIngest.source";
/** Original values of fields the mapping had to replace (e.g. a legacy `location` string). Kept in raw. */
const REPLACED_KEY = "@signinIngest.replaced";

export function shapeOf(event: unknown): EventShape {
  if (event === null || typeof event !== "object" || Array.isArray(event)) {
    return "unknown";
  }
  const e = event as Record<string, unknown>;
  if (isAzureMonitorRecord(e)) {
    return "azureMonitor";
  }
  if ("createdDateTime" in e) {
    return "graphSignIn";
  }
  if ("signinDateTime" in e || "signinDateTimeInMillis" in e) {
    return "azureAdGraph";
  }
  if ("activityDateTime" in e) {
    return "graphDirectoryAudit";
  }
  return "unknown";
}

/** `2016-09-25T10:00:00.123` (documented as UTC, zone sometimes missing) → with `Z`; epoch millis as a fallback. */
function legacyTime(e: Record<string, unknown>): unknown {
  const text = e.signinDateTime;
  if (typeof text === "string") {
    if (isGraphDateTime(text)) {
      return text;
    }
    if (isGraphDateTime(`${text}Z`)) {
      return `${text}Z`;
    }
  }
  const millis =
    typeof e.signinDateTimeInMillis === "string" ? Number(e.signinDateTimeInMillis) : e.signinDateTimeInMillis;
  if (typeof millis === "number" && Number.isFinite(millis)) {
    const at = new Date(millis);
    if (!Number.isNaN(at.getTime())) {
      return at.toISOString();
    }
  }
  return text;
}

function errorCode(e: Record<string, unknown>): number | null {
  const code = typeof e.signinErrorCode === "string" ? Number(e.signinErrorCode) : e.signinErrorCode;
  if (typeof code === "number" && Number.isInteger(code)) {
    return code;
  }
  const status = typeof e.loginStatus === "string" ? Number(e.loginStatus) : e.loginStatus;
  // loginStatus 0 = success; 1 = failure without a code in the record: the code is unknown, not 0.
  return status === 0 ? 0 : null;
}

/** `"host;OS;browser;"` → deviceDetail. */
function deviceDetail(info: unknown): Record<string, unknown> {
  const [displayName = "", operatingSystem = "", browser = ""] =
    typeof info === "string" ? info.split(";").map((p) => p.trim()) : [];
  return {
    deviceId: "",
    displayName,
    operatingSystem,
    browser,
    isCompliant: null,
    isManaged: null,
    trustType: null,
  };
}

function location(e: Record<string, unknown>): Record<string, unknown> | undefined {
  const loc = e.location;
  const geo = e.geoCoordinates ?? null;
  if (loc !== null && typeof loc === "object" && !Array.isArray(loc)) {
    const l = loc as Record<string, unknown>;
    return {
      ...l,
      city: l.city ?? null,
      state: l.state ?? null,
      countryOrRegion: l.countryOrRegion ?? l.country ?? null,
      geoCoordinates: l.geoCoordinates ?? geo,
    };
  }
  if (typeof loc === "string") {
    const parts = loc.split(",").map((p) => p.trim());
    const [city = null, state = null, country = null] = parts.length >= 3 ? parts : [parts[0] ?? null, null, null];
    return { city, state, countryOrRegion: country, geoCoordinates: geo };
  }
  return geo === null ? undefined : { city: null, state: null, countryOrRegion: null, geoCoordinates: geo };
}

/**
 * Maps an Azure AD Graph signinEvent to Graph's signIn shape. Every original field is kept under its own name;
 * Graph fields are added next to them (signinDateTime → createdDateTime, loginStatus/signinErrorCode/failureReason →
 * status, deviceInformation → deviceDetail, location.country → location.countryOrRegion, mfaRequired →
 * authenticationRequirement, mfa* → mfaDetail), with `@signinIngest.source: "azureAdGraph"`. Where a Graph field
 * replaces an original value of a different shape, the original is kept under `@signinIngest.replaced`.
 */
export function fromAzureAdGraph(event: Record<string, unknown>): Record<string, unknown> {
  const mapped: Record<string, unknown> = {
    createdDateTime: legacyTime(event),
    status: {
      errorCode: errorCode(event),
      failureReason: typeof event.failureReason === "string" && event.failureReason !== "" ? event.failureReason : null,
      additionalDetails: null,
    },
    // The legacy report listed interactive sign-ins only (DERIVED: it predates non-interactive sign-in logs).
    isInteractive: true,
  };
  if ("deviceInformation" in event) {
    mapped.deviceDetail = deviceDetail(event.deviceInformation);
  }
  const loc = location(event);
  if (loc !== undefined) {
    mapped.location = loc;
  }
  if (typeof event.mfaRequired === "boolean") {
    mapped.authenticationRequirement = event.mfaRequired ? "multiFactorAuthentication" : "singleFactorAuthentication";
  }
  if ("mfaAuthMethod" in event || "mfaAuthDetail" in event) {
    mapped.mfaDetail = { authMethod: event.mfaAuthMethod ?? null, authDetail: event.mfaAuthDetail ?? null };
  }
  const replaced: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(mapped)) {
    if (key in event && !containsOriginal(value, event[key])) {
      replaced[key] = event[key];
    }
  }
  return {
    ...event,
    ...mapped,
    [SOURCE_KEY]: "azureAdGraph",
    ...(Object.keys(replaced).length > 0 ? { [REPLACED_KEY]: replaced } : {}),
  };
}

/** True when `mapped` keeps all of `original` (equal, or an object with every original member unchanged). */
function containsOriginal(mapped: unknown, original: unknown): boolean {
  if (JSON.stringify(mapped) === JSON.stringify(original)) {
    return true;
  }
  if (
    mapped === null ||
    original === null ||
    typeof mapped !== "object" ||
    typeof original !== "object" ||
    Array.isArray(original)
  ) {
    return false;
  }
  const m = mapped as Record<string, unknown>;
  return Object.entries(original as Record<string, unknown>).every(([k, v]) => containsOriginal(m[k], v));
}
