// Builders for realistic (beta-shaped) signIn objects.
import {
  APPS,
  CA_POLICIES,
  HOME_CITIES,
  INTERACTIVE_FAILURES,
  LEGACY_CLIENTS,
  MFA_DENIALS,
  NON_INTERACTIVE_FAILURES,
  PRIMARY_AUTH_FAILURES,
  SP_FAILURES,
  UNTRUSTED_COUNTRIES,
} from "./catalog.ts";
import type { App, City } from "./catalog.ts";
import { chance, int, mulberry32, pick, rngFor, uuid, weighted } from "./random.ts";
import type { Rng } from "./random.ts";
import { asnFor, ipv4For, tenantModel } from "./tenant.ts";
import type { ManagedIdentity, ServicePrincipal, TenantModel, User } from "./tenant.ts";

export interface Stamp {
  sec: number;
  frac: number;
  text: string;
}

/** Graph-style timestamp: 7 fractional digits sometimes, none other times; always Z. */
export function stampAt(ms: number, rng: Rng): Stamp {
  const sec = Math.floor(ms / 1000);
  const iso = new Date(sec * 1000).toISOString().slice(0, 19);
  if (chance(rng, 0.35)) {
    return { sec, frac: 0, text: `${iso}Z` };
  }
  const frac = int(rng, 0, 9_999_999);
  return { sec, frac, text: `${iso}.${String(frac).padStart(7, "0")}Z` };
}

export interface UserEventOptions {
  interactive: boolean;
  city?: City;
  ip?: string;
  app?: App;
  status?: readonly [number, string];
  clientAppUsed?: string;
  userAgent?: string;
  risk?: { level: string; types: string[] };
  /** authenticationProtocol, e.g. deviceCode (default none); a non-interactive deviceCode sign-in is a refresh. */
  protocol?: string;
  /** authenticationStepResultDetail of a denied MFA prompt (with status 500121). */
  mfaDenial?: string;
}

const CA_BLOCK: readonly [number, string] = [
  53003,
  "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.",
];

/**
 * authenticationStepRequirement as real tenants send it: empty in production captures, "Primary authentication" /
 * "Multi-factor authentication" (Azure Monitor schema) or "MFA" (Graph examples) otherwise.
 */
function stepRequirement(rng: Rng, mfa: boolean): string {
  if (chance(rng, 0.7)) {
    return "";
  }
  return mfa
    ? pick(rng, ["Multi-factor authentication", "Multi-factor authentication", "MFA"])
    : "Primary authentication";
}

function location(c: City): Record<string, unknown> {
  return {
    city: c.city,
    state: c.state,
    countryOrRegion: c.country,
    geoCoordinates: { altitude: null, latitude: c.lat, longitude: c.lon },
  };
}

function authStep(
  at: string,
  method: string,
  detail: string,
  ok: boolean,
  result: string,
  req: string,
): Record<string, unknown> {
  return {
    authenticationStepDateTime: at,
    authenticationMethod: method,
    authenticationMethodDetail: detail,
    succeeded: ok,
    authenticationStepResultDetail: result,
    authenticationStepRequirement: req,
  };
}

/** Fields every signIn carries (beta shape); callers overwrite what differs. */
function base(model: TenantModel, rng: Rng, at: Stamp): Record<string, unknown> {
  const id = uuid(rng);
  return {
    id,
    createdDateTime: at.text,
    userDisplayName: null,
    userPrincipalName: null,
    userId: "",
    appId: "",
    appDisplayName: "",
    ipAddress: "",
    ipAddressFromResourceProvider: null,
    clientAppUsed: "",
    userAgent: "",
    correlationId: uuid(rng),
    conditionalAccessStatus: "notApplied",
    originalRequestId: id,
    isInteractive: false,
    tokenIssuerName: "",
    tokenIssuerType: "AzureAD",
    clientCredentialType: "none",
    processingTimeInMilliseconds: int(rng, 20, 900),
    riskDetail: "none",
    riskLevelAggregated: "none",
    riskLevelDuringSignIn: "none",
    riskState: "none",
    riskEventTypes: [],
    riskEventTypes_v2: [],
    resourceDisplayName: "",
    resourceId: "",
    resourceTenantId: model.tenantId,
    homeTenantId: model.tenantId,
    homeTenantName: "",
    authenticationMethodsUsed: [],
    authenticationRequirement: "singleFactorAuthentication",
    signInIdentifier: "",
    signInIdentifierType: null,
    servicePrincipalName: null,
    servicePrincipalId: "",
    federatedCredentialId: "",
    userType: "member",
    flaggedForReview: false,
    isTenantRestricted: false,
    // The network the address belongs to (asnFor), set by each builder once the address is known.
    autonomousSystemNumber: 0,
    crossTenantAccessType: "none",
    servicePrincipalCredentialKeyId: "",
    servicePrincipalCredentialThumbprint: "",
    uniqueTokenIdentifier: uuid(rng).replace(/-/g, "").slice(0, 22),
    incomingTokenType: "none",
    authenticationProtocol: "none",
    resourceServicePrincipalId: uuid(rng),
    signInEventTypes: [],
    status: { errorCode: 0, failureReason: "Other.", additionalDetails: null },
    deviceDetail: {
      deviceId: "",
      displayName: "",
      operatingSystem: "",
      browser: "",
      isCompliant: false,
      isManaged: false,
      trustType: "",
    },
    location: { city: "", state: "", countryOrRegion: "", geoCoordinates: null },
    appliedConditionalAccessPolicies: [],
    authenticationContextClassReferences: [],
    authenticationProcessingDetails: [],
    networkLocationDetails: [],
    authenticationDetails: [],
    authenticationRequirementPolicies: [],
    sessionLifetimePolicies: [],
    managedServiceIdentity: {
      msiType: "none",
      associatedResourceId: null,
      federatedTokenId: null,
      federatedTokenIssuer: null,
    },
    // Fields production beta sign-ins carry (and v1.0 does not); calibrated on ../shared/real-payloads/SOURCES.md.
    sessionId: uuid(rng),
    originalTransferMethod: "none",
    isThroughGlobalSecureAccess: false,
    globalSecureAccessIpAddress: "",
    appOwnerTenantId: "f8cdef31-a31e-4b4a-93e4-5f571e91255a",
    resourceOwnerTenantId: "f8cdef31-a31e-4b4a-93e4-5f571e91255a",
    appTokenProtectionStatus: "none",
    authenticationAppDeviceDetails: null,
    authenticationAppPolicyEvaluationDetails: [],
    appliedEventListeners: [],
    privateLinkDetails: { policyId: "", policyName: "", resourceId: "", policyTenantId: "" },
    tokenProtectionStatusDetails: { signInSessionStatus: "unbound", signInSessionStatusCode: 1002 },
    conditionalAccessAudiences: [],
    agent: { agentType: "notAgentic", parentAppId: "" },
  };
}

/** authenticationProcessingDetails as production sign-ins list them. */
function processingDetails(rng: Rng, interactive: boolean): Array<Record<string, string>> {
  return [
    { key: "Legacy TLS (TLS 1.0, 1.1, 3DES)", value: "False" },
    { key: "Oauth Scope Info", value: '["email","openid","profile","offline_access","User.Read"]' },
    { key: "Is CAE Token", value: chance(rng, 0.6) ? "True" : "False" },
    { key: "Root Key Type", value: interactive ? "Unknown" : "Password" },
    { key: "Authentication Strength", value: "Multifactor authentication" },
  ];
}

const NEARBY_KM = 450;

function nearbyCity(rng: Rng, home: City): City {
  const near = HOME_CITIES.filter((c) => c !== home && distanceKm(c, home) < NEARBY_KM);
  return near.length > 0 ? pick(rng, near) : home;
}

function distanceKm(a: City, b: City): number {
  const rad = Math.PI / 180;
  const h =
    Math.sin(((b.lat - a.lat) * rad) / 2) ** 2 +
    Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(((b.lon - a.lon) * rad) / 2) ** 2;
  return 2 * 6371 * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** A user sign-in (interactive or non-interactive) consistent across status, CA, MFA and risk. */
export function userEvent(
  model: TenantModel,
  rng: Rng,
  user: User,
  at: Stamp,
  o: UserEventOptions,
): Record<string, unknown> {
  const e = base(model, rng, at);
  const legacy =
    o.clientAppUsed !== undefined ? LEGACY_CLIENTS.includes(o.clientAppUsed) : o.interactive && chance(rng, 0.03);
  const app =
    o.app ??
    (legacy
      ? APPS[0]
      : weighted(
          rng,
          APPS.map(
            (a) => [o.interactive ? (a.admin && !user.admin ? a.weight * 0.05 : a.weight) : a.niWeight, a] as const,
          ),
        ));
  if (!app) {
    throw new Error("no app");
  }
  const dev = chance(rng, o.interactive ? 0.3 : 0.45) ? user.mobile : user.desktop;
  // A sign-in away from home is from a city within a few hundred km (a day trip, another office): a traveller's
  // journey takes hours, so the impossible-travel view lists the attack scenario, not every roaming user.
  const travel = !o.city && chance(rng, 0.04);
  const city = o.city ?? (travel ? nearbyCity(rng, user.home) : user.home);
  // At home a phone is on the carrier's network half the time; elsewhere the user has one address per place (the
  // other office, the hotel they always use). So a user's few ASNs are home broadband, phone and the places they go.
  let ip =
    o.ip ??
    (city === user.home
      ? dev === user.mobile && chance(rng, 0.5)
        ? user.mobileIp
        : user.homeIp
      : ipv4For(rngFor(model.seed, model.tenantId, "place-ip", user.id, city.city), city.country));
  const asn = asnFor(ip, city.country);
  if (user.guest && !o.ip && chance(rng, 0.5)) {
    ip = ip.includes(":") ? ip : ip.replace(/\.\d+$/, ".XXX");
  }
  const clientAppUsed =
    o.clientAppUsed ??
    (legacy
      ? pick(rng, LEGACY_CLIENTS)
      : dev.kind.mobile || !o.interactive
        ? "Mobile Apps and Desktop clients"
        : "Browser");
  let status =
    o.status ??
    (o.interactive
      ? chance(rng, 0.11)
        ? weighted(rng, INTERACTIVE_FAILURES)
        : undefined
      : chance(rng, 0.02)
        ? weighted(rng, NON_INTERACTIVE_FAILURES)
        : undefined);
  if (!o.status && legacy && chance(rng, 0.8)) {
    status = CA_BLOCK;
  }
  if (!o.status && UNTRUSTED_COUNTRIES.has(city.country) && !status) {
    status = CA_BLOCK;
  }
  const code = status?.[0] ?? 0;
  const primaryFailed = PRIMARY_AUTH_FAILURES.has(code);
  // Role holders are always asked for MFA (Conditional Access' "Require MFA for admins"), as most tenants do.
  const mfaNeeded =
    o.interactive && !legacy && (city !== user.home || chance(rng, 0.45) || app.admin === true || user.privileged);
  const mfaFailed = code === 500121 || code === 50074 || code === 50076;
  // Conditional Access
  const pol = CA_POLICIES.map((p, i) => {
    let result = p.result ?? "notApplied";
    if (!primaryFailed && o.interactive) {
      if (i === 0) {
        result = mfaNeeded ? (mfaFailed ? "failure" : code === 0 ? "success" : "notApplied") : "notApplied";
      }
      if (i === 1 && legacy) {
        result = code === 53003 ? "failure" : "notApplied";
      }
      if (i === 2 && app.admin) {
        result = dev.compliant ? "success" : "failure";
      }
      if (i === 3 && UNTRUSTED_COUNTRIES.has(city.country)) {
        result = "failure";
      }
      if (i === 4 && app.admin) {
        result = mfaFailed ? "failure" : "success";
      }
    }
    return {
      id: model.caPolicyIds[i] ?? "",
      displayName: p.name,
      enforcedGrantControls: [...p.grant],
      enforcedSessionControls: [],
      result,
      conditionsSatisfied: result === "notEnabled" ? "none" : "application,users",
      conditionsNotSatisfied: result === "notApplied" ? "location" : "none",
      includeRulesSatisfied: [],
      excludeRulesSatisfied: [],
      sessionControlsNotSatisfied: [],
      authenticationStrength: null,
    };
  });
  if (code === 53003 && !pol.some((p) => p.result === "failure")) {
    const blocker = pol[3];
    if (blocker) {
      blocker.result = "failure";
    }
  }
  const caStatus = pol.some((p) => p.result === "failure")
    ? "failure"
    : pol.some((p) => p.result === "success")
      ? "success"
      : "notApplied";
  // MFA was done for a success, a KMSI prompt after it, or a CA block after it; 500121 is a denied prompt; for the
  // "MFA required" interrupts (50074/50076) the prompt comes in the next sign-in.
  const mfaDone = mfaNeeded && (code === 0 || code === 50140 || code === 53003);
  const denial = code === 500121 ? (o.mfaDenial ?? weighted(rng, MFA_DENIALS)) : undefined;
  const method = pick(rng, [
    "Mobile app notification",
    "Mobile app notification",
    "OATH verification code",
    "Text message",
    "FIDO2 security key",
  ]);
  const details: Array<Record<string, unknown>> = [];
  if (o.interactive) {
    details.push(
      authStep(
        at.text,
        "Password",
        "Password in the cloud",
        !primaryFailed,
        primaryFailed ? (status?.[1] ?? "Invalid username or password") : "Correct password",
        stepRequirement(rng, false),
      ),
    );
    if (mfaNeeded && !primaryFailed && (mfaDone || denial)) {
      details.push(
        authStep(
          at.text,
          method,
          "",
          mfaDone,
          mfaDone ? "MFA successfully completed" : (denial ?? ""),
          stepRequirement(rng, true),
        ),
      );
    }
  } else {
    // Refreshes: the token's claims satisfied the first factor (and, half the time, MFA): no prompt.
    const claim = (result: string, mfa: boolean) =>
      authStep(at.text, "Previously satisfied", "", true, result, stepRequirement(rng, mfa));
    details.push(claim("First factor requirement satisfied by claim in the token", false));
    if (chance(rng, 0.5)) {
      details.push(claim("MFA requirement satisfied by claim in the token", true));
    }
  }
  const ver = dev.version;
  Object.assign(e, {
    userDisplayName: user.displayName,
    userPrincipalName: user.upn,
    userId: user.id,
    appId: app.appId,
    appDisplayName: app.name,
    ipAddress: ip,
    autonomousSystemNumber: asn,
    clientAppUsed,
    userAgent: o.userAgent ?? (legacy ? "" : dev.kind.ua(ver)),
    conditionalAccessStatus: caStatus,
    isInteractive: o.interactive,
    resourceDisplayName: app.resource,
    resourceId: app.resourceId,
    homeTenantName: user.guest ? "" : model.domain,
    authenticationRequirement:
      mfaNeeded || details.length === 2 ? "multiFactorAuthentication" : "singleFactorAuthentication",
    authenticationMethodsUsed: details
      .filter((d) => d.succeeded && d.authenticationMethod !== "Previously satisfied")
      .map((d) => d.authenticationMethod),
    signInIdentifier: user.upn,
    signInIdentifierType: "userPrincipalName",
    userType: user.guest ? "guest" : "member",
    crossTenantAccessType: user.guest ? "b2bCollaboration" : "none",
    authenticationProtocol: o.interactive ? (o.protocol ?? "none") : "none",
    originalTransferMethod: o.protocol === "deviceCode" ? "deviceCodeFlow" : "none",
    authenticationProcessingDetails: processingDetails(rng, o.interactive),
    incomingTokenType: o.interactive ? "none" : "primaryRefreshToken",
    signInEventTypes: [o.interactive ? "interactiveUser" : "nonInteractiveUser"],
    status: {
      errorCode: code,
      failureReason: status ? status[1] : "Other.",
      additionalDetails: denial ?? (code === 0 && mfaDone ? "MFA completed in Azure AD" : null),
    },
    deviceDetail: {
      deviceId: dev.deviceId,
      displayName: dev.displayName,
      operatingSystem: dev.kind.os,
      browser: legacy ? "" : dev.kind.browser(ver),
      isCompliant: dev.compliant,
      isManaged: dev.managed,
      trustType: dev.trustType,
    },
    location: location(city),
    appliedConditionalAccessPolicies: pol,
    authenticationDetails: details,
  });
  if (user.guest) {
    e.homeTenantId = "00000000-0000-4000-8000-00000000beef";
  }
  const risk =
    o.risk ??
    (o.interactive && chance(rng, 0.015)
      ? {
          level: pick(rng, ["low", "low", "medium", "high"]),
          types: [pick(rng, ["unfamiliarFeatures", "anonymizedIPAddress", "unlikelyTravel"])],
        }
      : undefined);
  if (risk) {
    Object.assign(e, riskPatch(risk.level, risk.types));
  }
  return e;
}

export function riskPatch(level: string, types: string[]): Record<string, unknown> {
  return {
    riskLevelDuringSignIn: level,
    riskLevelAggregated: level,
    riskState: "atRisk",
    riskDetail: "none",
    riskEventTypes: types,
    riskEventTypes_v2: types,
  };
}

export function servicePrincipalEvent(
  model: TenantModel,
  rng: Rng,
  sp: ServicePrincipal,
  at: Stamp,
): Record<string, unknown> {
  const e = base(model, rng, at);
  const res = pick(
    rng,
    APPS.filter((a) => a.resourceId.startsWith("0000000")),
  );
  const status = chance(rng, 0.03) ? weighted(rng, SP_FAILURES) : undefined;
  const spIp = ipv4For(rng, "AZ");
  Object.assign(e, {
    appId: sp.appId,
    appDisplayName: sp.name,
    servicePrincipalId: sp.id,
    servicePrincipalName: sp.name,
    ipAddress: spIp,
    autonomousSystemNumber: asnFor(spIp, "AZ"),
    resourceDisplayName: res.resource,
    resourceId: res.resourceId,
    clientCredentialType: sp.credential,
    signInEventTypes: ["servicePrincipal"],
    servicePrincipalCredentialKeyId: uuid(rng),
    status: { errorCode: status?.[0] ?? 0, failureReason: status?.[1] ?? "Other.", additionalDetails: null },
    location: location(
      pick(rng, [{ city: "Amsterdam", state: "Noord-Holland", country: "NL", lat: 52.3676, lon: 4.9041, tz: 1 }]),
    ),
  });
  return e;
}

export function managedIdentityEvent(
  model: TenantModel,
  rng: Rng,
  mi: ManagedIdentity,
  at: Stamp,
): Record<string, unknown> {
  const e = base(model, rng, at);
  const res = pick(
    rng,
    APPS.filter((a) => a.resourceId.startsWith("0000000") || a.resource.startsWith("Windows Azure")),
  );
  Object.assign(e, {
    appId: mi.appId,
    appDisplayName: mi.name,
    servicePrincipalId: mi.id,
    servicePrincipalName: mi.name,
    ipAddress: "",
    autonomousSystemNumber: asnFor("", "AZ"),
    resourceDisplayName: res.resource,
    resourceId: res.resourceId,
    clientCredentialType: "managedIdentity",
    signInEventTypes: ["managedIdentity"],
    managedServiceIdentity: {
      msiType: "systemAssigned",
      associatedResourceId: mi.resourceId,
      federatedTokenId: null,
      federatedTokenIssuer: null,
    },
  });
  return e;
}

/**
 * Builds one realistic interactive sign-in for tests. `rng` may be a seed.
 * Overrides are shallow-merged last (so `{id, createdDateTime}` pin those fields).
 */
export function makeSignIn(
  rng: Rng | number = 1,
  overrides: Record<string, unknown> = {},
  opts: { tenantId?: string; interactive?: boolean } = {},
): Record<string, unknown> {
  const r = typeof rng === "number" ? mulberry32(rng) : rng;
  const model = tenantModel(1, opts.tenantId ?? "00000000-0000-4000-8000-000000000001", 50);
  const user = pick(r, model.users);
  const at = stampAt(Date.now() - int(r, 0, 3_600_000), r);
  const e = userEvent(model, r, user, at, { interactive: opts.interactive ?? true });
  return { ...e, ...overrides };
}
