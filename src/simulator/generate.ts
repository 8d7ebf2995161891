// Lazy, deterministic event generation per (tenant, UTC hour) bucket.
import { FOREIGN_CITIES, HOME_CITIES, SPRAY_APPS, SPRAY_USER_AGENTS, UNTRUSTED_COUNTRIES } from "./catalog.ts";
import { managedIdentityEvent, riskPatch, servicePrincipalEvent, stampAt, userEvent } from "./events.ts";
import type { Stamp, UserEventOptions } from "./events.ts";
import { chance, int, logNormalSeconds, pick, poisson, rngFor, weighted } from "./random.ts";
import type { Rng } from "./random.ts";
import { DAY_WEIGHT_SUM, hostingAddress, hourWeight, ipv4For, tenantModel } from "./tenant.ts";
import type { TenantModel, User } from "./tenant.ts";

export const HOUR_MS = 3_600_000;

/** Foreign cities Conditional Access does not block (an attacker's success from there is plausible). */
const ALLOWED_FOREIGN_CITIES = FOREIGN_CITIES.filter((c) => !UNTRUSTED_COUNTRIES.has(c.country));

export interface GenConfig {
  seed: number;
  users: number;
  signInsPerUserPerDay: number;
  arrivalLatency: { p50Seconds: number; p99Seconds: number; maxSeconds: number } | false;
  republishRate: number;
  /** Directory audit events per user per day (default 2). */
  auditsPerUserPerDay?: number;
  /**
   * Weekends (in each user's time zone) carry a fraction of weekday traffic, as in real tenants (default true).
   * startSimulator turns it off unless asked for, so tests and benchmarks do not depend on the day they run on.
   */
  quietWeekends?: boolean;
}
export interface GenEvent {
  obj: Record<string, unknown>;
  sec: number;
  frac: number;
  types: string[];
  visibleAtMs: number;
  republish?: { atMs: number; patch: Record<string, unknown> };
}

function localHourAndWeekend(hourMs: number, tz: number): { h: number; weekend: boolean } {
  const d = new Date(hourMs + tz * HOUR_MS);
  const day = d.getUTCDay();
  return { h: d.getUTCHours(), weekend: day === 0 || day === 6 };
}

function shuffled<T>(rng: Rng, items: readonly T[]): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const x = a[i] as T;
    a[i] = a[j] as T;
    a[j] = x;
  }
  return a;
}

/** Generates every event created within [hour*1h, (hour+1)*1h) for a tenant, sorted by time then id. */
export function generateHour(cfg: GenConfig, tenantId: string, hour: number): GenEvent[] {
  const model = tenantModel(cfg.seed, tenantId, cfg.users);
  const hourMs = hour * HOUR_MS;
  const rng = rngFor(cfg.seed, tenantId, "hour", hour);
  const raw: Array<{ obj: Record<string, unknown>; at: Stamp }> = [];
  const at = (offsetMs?: number): Stamp => stampAt(hourMs + (offsetMs ?? Math.floor(rng() * HOUR_MS)), rng);
  const add = (u: User, s: Stamp, o: UserEventOptions): void => {
    raw.push({ obj: userEvent(model, rng, u, s, o), at: s });
  };
  const perDay = cfg.signInsPerUserPerDay;
  for (const user of model.users) {
    const { h, weekend: localWeekend } = localHourAndWeekend(hourMs, user.home.tz);
    const weekend = localWeekend && cfg.quietWeekends !== false;
    const w = hourWeight(h) / DAY_WEIGHT_SUM;
    const nInt = poisson(rng, perDay * user.activity * w * (weekend ? 0.15 : 1));
    const nNon = poisson(rng, 3 * perDay * user.activity * (0.3 / 24 + 0.7 * w) * (weekend ? 0.4 : 1));
    for (let i = 0; i < nInt; i++) {
      add(user, at(), { interactive: true });
    }
    for (let i = 0; i < nNon; i++) {
      add(user, at(), { interactive: false });
    }
  }
  for (const sp of model.servicePrincipals) {
    const n = poisson(rng, sp.perHour);
    for (let i = 0; i < n; i++) {
      const s = at();
      raw.push({ obj: servicePrincipalEvent(model, rng, sp, s), at: s });
    }
  }
  for (const mi of model.managedIdentities) {
    const n = poisson(rng, mi.perHour);
    for (let i = 0; i < n; i++) {
      const s = at();
      raw.push({ obj: managedIdentityEvent(model, rng, mi, s), at: s });
    }
  }
  attacks(model, cfg.seed, hour, rng, at, add);
  // Arrival latency and re-publication use their own stream so content does not depend on them.
  const lat = rngFor(cfg.seed, tenantId, "latency", hour);
  const out: GenEvent[] = raw.map(({ obj, at: s }) => {
    const createdMs = s.sec * 1000 + s.frac / 10_000;
    const delay = arrivalDelayMs(cfg, lat);
    const ev: GenEvent = {
      obj,
      sec: s.sec,
      frac: s.frac,
      types: obj.signInEventTypes as string[],
      visibleAtMs: Math.ceil(createdMs + delay),
    };
    if (cfg.republishRate > 0 && chance(lat, cfg.republishRate)) {
      ev.republish = { atMs: ev.visibleAtMs + int(lat, 10, 120) * 60_000, patch: republishPatch(lat, obj) };
    }
    return ev;
  });
  out.sort((a, b) => a.sec - b.sec || a.frac - b.frac || (String(a.obj.id) < String(b.obj.id) ? -1 : 1));
  return out;
}

/** A later version of an event: risk detected, or MFA details aggregated. */
function republishPatch(rng: Rng, obj: Record<string, unknown>): Record<string, unknown> {
  if (obj.riskState === "none" && chance(rng, 0.5)) {
    return riskPatch(pick(rng, ["low", "medium", "high"]), [
      pick(rng, ["unfamiliarFeatures", "anonymizedIPAddress", "unlikelyTravel"]),
    ]);
  }
  const details = Array.isArray(obj.authenticationDetails) ? [...(obj.authenticationDetails as unknown[])] : [];
  details.push({
    authenticationStepDateTime: obj.createdDateTime,
    authenticationMethod: "Mobile app notification",
    authenticationMethodDetail: "",
    succeeded: true,
    authenticationStepResultDetail: "MFA completed in Azure AD",
    authenticationStepRequirement: "",
  });
  const status = (obj.status ?? {}) as Record<string, unknown>;
  return {
    authenticationRequirement: "multiFactorAuthentication",
    authenticationDetails: details,
    authenticationMethodsUsed: ["Password", "Mobile app notification"],
    status: { ...status, additionalDetails: "MFA completed in Azure AD" },
  };
}

/**
 * Password spray (about every other day), impossible travel, MFA fatigue, device-code phishing, a brute force that
 * ends in a success and a role holder's success from a hosting provider's network (each about one day in three).
 */
function attacks(
  model: TenantModel,
  seed: number,
  hour: number,
  rng: Rng,
  at: (offsetMs?: number) => Stamp,
  add: (u: User, s: Stamp, o: UserEventOptions) => void,
): void {
  if (model.users.length === 0) {
    return;
  }
  const day = Math.floor(hour / 24);
  const spray = rngFor(seed, model.tenantId, "spray", day);
  if (spray() < 0.5 && int(spray, 0, 23) === hour % 24) {
    const city = pick(spray, FOREIGN_CITIES);
    const ip = ipv4For(spray, city.country);
    const app = pick(spray, SPRAY_APPS);
    const userAgent = pick(spray, SPRAY_USER_AGENTS);
    const start = int(spray, 0, 15) * 60_000;
    // A quarter of the tenant (at least 15 accounts): interrupts stay the commonest non-zero codes, as in real tenants.
    const count = Math.max(Math.min(model.users.length, 15), Math.ceil(model.users.length * 0.25));
    for (const user of shuffled(spray, model.users).slice(0, count)) {
      const attempts = chance(rng, 0.3) ? 2 : 1;
      for (let i = 0; i < attempts; i++) {
        add(user, at(start + int(rng, 0, 40 * 60_000)), {
          interactive: true,
          city,
          ip,
          app,
          userAgent,
          clientAppUsed: chance(rng, 0.5) ? "Browser" : "other clients",
          // Stolen lists hold disabled accounts too (50057); some targets lock out (50053).
          status: weighted(rng, [
            [85, [50126, "Error validating credentials due to invalid username or password."]],
            [
              8,
              [
                50053,
                "Account is locked because user tried to sign in too many times with an incorrect user ID or password.",
              ],
            ],
            [7, [50057, "User account is disabled. The account has been disabled by an administrator."]],
          ] as const),
        });
      }
    }
  }
  const travel = rngFor(seed, model.tenantId, "travel", day);
  if (travel() < 0.35 && int(travel, 0, 23) === hour % 24) {
    const user = pick(travel, model.users);
    const far = pick(
      travel,
      HOME_CITIES.filter((c) => Math.abs(c.lon - user.home.lon) > 60),
    );
    const t1 = int(travel, 0, 25) * 60_000;
    add(user, at(t1), { interactive: true, status: [0, "Other."] });
    add(user, at(t1 + int(travel, 8, 30) * 60_000), {
      interactive: true,
      city: far,
      status: [0, "Other."],
      ...(chance(travel, 0.6) ? { risk: { level: "medium", types: ["unlikelyTravel"] } } : {}),
    });
  }
  // MFA fatigue: push bombing (500121, mostly unanswered, some declined), often followed by the approval.
  const fatigue = rngFor(seed, model.tenantId, "mfa-fatigue", day);
  if (fatigue() < 0.35 && int(fatigue, 0, 23) === hour % 24) {
    const user = pick(fatigue, model.users);
    const ip = ipv4For(fatigue, user.home.country);
    const t0 = int(fatigue, 0, 40) * 60_000;
    const prompts = int(fatigue, 8, 14);
    for (let i = 0; i < prompts; i++) {
      add(user, at(t0 + i * 30_000 + int(rng, 0, 20_000)), {
        interactive: true,
        city: user.home,
        ip,
        status: [500121, "Authentication failed during strong authentication request."],
        mfaDenial:
          i % 3 === 2
            ? "MFA denied; user declined the authentication"
            : "MFA denied; user did not respond to mobile app notification",
      });
    }
    if (chance(fatigue, 0.7)) {
      add(user, at(t0 + prompts * 30_000 + 60_000), { interactive: true, city: user.home, ip, status: [0, "Other."] });
    }
  }
  // Device-code phishing: the victim enters the attacker's code at home (an interactive deviceCode sign-in), then
  // the attacker redeems the tokens from abroad (non-interactive, originalTransferMethod deviceCodeFlow).
  const phish = rngFor(seed, model.tenantId, "device-code", day);
  if (phish() < 0.35 && int(phish, 0, 23) === hour % 24) {
    const user = pick(phish, model.users);
    const app = pick(phish, SPRAY_APPS);
    const t0 = int(phish, 0, 20) * 60_000;
    add(user, at(t0), { interactive: true, city: user.home, app, protocol: "deviceCode", status: [0, "Other."] });
    const city = pick(phish, ALLOWED_FOREIGN_CITIES);
    const ip = ipv4For(phish, city.country);
    for (let i = 0, n = int(phish, 2, 5); i < n; i++) {
      add(user, at(t0 + int(phish, 5, 35) * 60_000), {
        interactive: false,
        city,
        ip,
        app,
        protocol: "deviceCode",
        userAgent: "python-requests/2.31.0",
        status: [0, "Other."],
      });
    }
  }
  // A role holder signs in from a VPN or hosting provider's network (an AiTM proxy, or a personal VPN): an autonomous
  // system none of their other sign-ins come from.
  const proxy = rngFor(seed, model.tenantId, "privileged-new-asn", day);
  if (proxy() < 0.35 && int(proxy, 0, 23) === hour % 24 && model.privilegedUsers.length > 0) {
    const user = pick(proxy, model.privilegedUsers);
    const { ip, city } = hostingAddress(proxy);
    const t0 = int(proxy, 0, 50) * 60_000;
    for (let i = 0, n = int(proxy, 1, 3); i < n; i++) {
      add(user, at(t0 + i * int(proxy, 1, 4) * 60_000), { interactive: true, city, ip, status: [0, "Other."] });
    }
  }
  // Password guessing against one user that ends in a success from the attacker's address.
  const brute = rngFor(seed, model.tenantId, "brute-force", day);
  if (brute() < 0.35 && int(brute, 0, 23) === hour % 24) {
    const user = pick(brute, model.users);
    const city = pick(brute, ALLOWED_FOREIGN_CITIES);
    const ip = ipv4For(brute, city.country);
    const t0 = int(brute, 0, 30) * 60_000;
    const guesses = int(brute, 10, 16);
    for (let i = 0; i < guesses; i++) {
      add(user, at(t0 + i * 45_000), {
        interactive: true,
        city,
        ip,
        status: [50126, "Error validating credentials due to invalid username or password."],
      });
    }
    add(user, at(t0 + guesses * 45_000 + 30_000), { interactive: true, city, ip, status: [0, "Other."] });
  }
}

/** How long after its creation an event becomes visible (0 without an arrival-latency setting). */
export function arrivalDelayMs(cfg: GenConfig, rng: Rng): number {
  const latency = cfg.arrivalLatency;
  return latency ? logNormalSeconds(rng, latency.p50Seconds, latency.p99Seconds, latency.maxSeconds) * 1000 : 0;
}
