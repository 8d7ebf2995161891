// The deterministic synthetic tenant: users, devices, service principals.
import {
  DEPARTMENTS,
  DESKTOPS,
  DOMAINS,
  FIRST_NAMES,
  HOME_CITIES,
  IPV4_FIRST_OCTETS,
  LAST_NAMES,
  MANAGED_IDENTITIES,
  MOBILES,
  SERVICE_PRINCIPALS,
} from "./catalog.ts";
import type { City, Device } from "./catalog.ts";
import { chance, hash32, int, pick, rngFor, uuid, weighted } from "./random.ts";
import type { Rng } from "./random.ts";

export interface UserDevice {
  kind: Device;
  version: number;
  deviceId: string;
  displayName: string;
  compliant: boolean;
  managed: boolean;
  trustType: string;
}
export interface User {
  id: string;
  upn: string;
  displayName: string;
  department: string;
  home: City;
  homeIp: string;
  guest: boolean;
  admin: boolean;
  desktop: UserDevice;
  mobile: UserDevice;
  activity: number; // relative activity multiplier
}
export interface ServicePrincipal {
  id: string;
  appId: string;
  name: string;
  credential: "clientSecret" | "certificate";
  perHour: number;
}
export interface ManagedIdentity {
  id: string;
  appId: string;
  name: string;
  resourceId: string;
  perHour: number;
}
export interface TenantModel {
  tenantId: string;
  seed: number;
  domain: string;
  hqCountry: string;
  users: User[];
  servicePrincipals: ServicePrincipal[];
  managedIdentities: ManagedIdentity[];
  caPolicyIds: string[];
}

export function ipv4For(rng: Rng, country: string): string {
  const h = hash32("ip", country);
  const first = IPV4_FIRST_OCTETS[h % IPV4_FIRST_OCTETS.length] ?? 20;
  return `${first}.${(h >>> 8) % 256}.${int(rng, 0, 255)}.${int(rng, 1, 254)}`;
}

export function ipv6For(rng: Rng, country: string): string {
  const h = hash32("ip6", country);
  const seg = (): string => int(rng, 0, 0xffff).toString(16);
  return `2a0${h % 10}:${((h >>> 4) & 0xfff).toString(16)}:${seg()}:${seg()}:${seg()}:${seg()}:${seg()}:${seg()}`;
}

function device(rng: Rng, list: typeof DESKTOPS, prefix: string, n: number): UserDevice {
  const kind = weighted(rng, list);
  const managed = chance(rng, kind.mobile ? 0.5 : 0.85);
  return {
    kind,
    version: int(rng, 118, 126),
    deviceId: managed ? uuid(rng) : "",
    displayName: managed ? `${prefix}-${kind.mobile ? "MB" : "LT"}-${String(n).padStart(4, "0")}` : "",
    compliant: managed && chance(rng, 0.9),
    managed,
    trustType: managed ? pick(rng, kind.trust) : "",
  };
}

const modelCache = new Map<string, TenantModel>();

/** Builds (and memoises) the tenant model: a pure function of (seed, tenantId, userCount). */
export function tenantModel(seed: number, tenantId: string, userCount: number): TenantModel {
  const key = `${seed}|${tenantId}|${userCount}`;
  const cached = modelCache.get(key);
  if (cached) {
    return cached;
  }
  const rng = rngFor(seed, tenantId, "tenant");
  // The policies after the first five draw from their own stream, so adding them left the rest of the model as it was.
  const policyRng = rngFor(seed, tenantId, "ca-policies");
  const domainWord = pick(rng, DOMAINS);
  const domain = `${domainWord}${int(rng, 1, 99)}.example`;
  const prefix = domainWord.slice(0, 2).toUpperCase();
  const hq = pick(rng, HOME_CITIES.slice(0, 14));
  const hqCities = HOME_CITIES.filter((c) => c.country === hq.country);
  const users: User[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < userCount; i++) {
    const first = pick(rng, FIRST_NAMES);
    const last = pick(rng, LAST_NAMES);
    let local = `${first}.${last}`.toLowerCase();
    if (seen.has(local)) {
      local = `${local}${i}`;
    }
    seen.add(local);
    const guest = chance(rng, 0.05);
    const home = chance(rng, 0.7) ? pick(rng, hqCities) : pick(rng, HOME_CITIES);
    const department = pick(rng, DEPARTMENTS);
    users.push({
      id: uuid(rng),
      upn: guest ? `${local}@partner${int(rng, 1, 9)}.example` : `${local}@${domain}`,
      displayName: `${first} ${last}`,
      department,
      home,
      homeIp: chance(rng, 0.12) ? ipv6For(rng, home.country) : ipv4For(rng, home.country),
      guest,
      admin: department === "IT" || chance(rng, 0.03),
      desktop: device(rng, DESKTOPS, prefix, i),
      mobile: device(rng, MOBILES, prefix, i),
      activity: 0.4 + rng() * 1.2,
    });
  }
  const sub = uuid(rng);
  const model: TenantModel = {
    tenantId,
    seed,
    domain,
    hqCountry: hq.country,
    users,
    servicePrincipals: SERVICE_PRINCIPALS.map((name) => ({
      id: uuid(rng),
      appId: uuid(rng),
      name,
      credential: chance(rng, 0.6) ? "clientSecret" : "certificate",
      perHour: 1 + rng() * 6,
    })),
    managedIdentities: MANAGED_IDENTITIES.map((r) => {
      const resourceId = r.replace("{sub}", sub);
      return {
        id: uuid(rng),
        appId: uuid(rng),
        name: resourceId.split("/").pop() ?? "mi",
        resourceId,
        perHour: 1 + rng() * 3,
      };
    }),
    caPolicyIds: [uuid(rng), uuid(rng), uuid(rng), uuid(rng), uuid(rng), ...[5, 6, 7, 8, 9].map(() => uuid(policyRng))],
  };
  modelCache.set(key, model);
  return model;
}

/** Relative sign-in weight for a local hour of day (business-hours shaped). */
export function hourWeight(localHour: number): number {
  const h = ((localHour % 24) + 24) % 24;
  if (h >= 8 && h < 18) {
    return h === 12 ? 0.7 : h < 9 || h >= 17 ? 0.8 : 1;
  }
  if (h >= 18 && h < 22) {
    return 0.25;
  }
  if (h >= 6 && h < 8) {
    return 0.3;
  }
  return 0.03;
}
export const DAY_WEIGHT_SUM = Array.from({ length: 24 }, (_, h) => hourWeight(h)).reduce((a, b) => a + b, 0);
