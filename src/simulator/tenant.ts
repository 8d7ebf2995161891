// The deterministic synthetic tenant: users, devices, service principals.
import {
  COUNTRY_ASNS,
  DEPARTMENTS,
  FOREIGN_CITIES,
  HOSTING_NETWORKS,
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

interface UserDevice {
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
  /** Holds a directory role (tenantModel's privileged list): role assignments target these users only. */
  privileged: boolean;
  /** The carrier address the user's phone signs in from at home (another network, so another ASN, of the country). */
  mobileIp: string;
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
  /**
   * The few dozen role holders (about 6 per 1,000 users, 3 to 40) in the order drawn: role assignments target them
   * (the first ones most often) and the directory changes admins make are theirs.
   */
  privilegedUsers: User[];
  servicePrincipals: ServicePrincipal[];
  managedIdentities: ManagedIdentity[];
  caPolicyIds: string[];
}

export function ipv4For(rng: Rng, country: string): string {
  const h = hash32("ip", country);
  const first = IPV4_FIRST_OCTETS[h % IPV4_FIRST_OCTETS.length] ?? 20;
  return `${first}.${(h >>> 8) % 256}.${int(rng, 0, 255)}.${int(rng, 1, 254)}`;
}

function ipv6For(rng: Rng, country: string): string {
  const h = hash32("ip6", country);
  const seg = (): string => int(rng, 0, 0xffff).toString(16);
  return `2a0${h % 10}:${((h >>> 4) & 0xfff).toString(16)}:${seg()}:${seg()}:${seg()}:${seg()}:${seg()}:${seg()}`;
}

/**
 * The autonomous system an address belongs to: a hosting network's ASN, else one of its country's networks chosen by
 * the address's /24 (IPv6: first three groups), so the same address always gives the same ASN.
 */
export function asnFor(ip: string, country: string): number {
  const hosting = HOSTING_NETWORKS.find((n) => ip.startsWith(`${n.prefix}.`));
  if (hosting) {
    return hosting.asn;
  }
  const pool = COUNTRY_ASNS[country] ?? COUNTRY_ASNS.US ?? [7922];
  const network = ip.includes(":") ? ip.split(":").slice(0, 3).join(":") : ip.split(".").slice(0, 3).join(".");
  return pool[hash32("asn", network) % pool.length] ?? 7922;
}

/** An address of a hosting or VPN provider, with the city it geolocates to (an attacker's proxy, a personal VPN). */
export function hostingAddress(rng: Rng): { ip: string; city: City } {
  const n = pick(rng, HOSTING_NETWORKS);
  const city = [...HOME_CITIES, ...FOREIGN_CITIES].find((c) => c.city === n.city) ?? pick(rng, HOME_CITIES);
  return { ip: `${n.prefix}.${int(rng, 0, 255)}.${int(rng, 1, 254)}`, city };
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
      privileged: false,
      mobileIp: "",
      desktop: device(rng, DESKTOPS, prefix, i),
      mobile: device(rng, MOBILES, prefix, i),
      activity: 0.4 + rng() * 1.2,
    });
  }
  // Own streams: the users drawn above stay as they were before these fields existed.
  const mobileRng = rngFor(seed, tenantId, "mobile-ip");
  for (const u of users) {
    u.mobileIp = u.homeIp.includes(":") ? ipv6For(mobileRng, u.home.country) : ipv4For(mobileRng, u.home.country);
  }
  const privilegedUsers = privilegedOf(rngFor(seed, tenantId, "privileged"), users);
  const sub = uuid(rng);
  const model: TenantModel = {
    tenantId,
    seed,
    domain,
    hqCountry: hq.country,
    users,
    privilegedUsers,
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

/** Role holders per 1,000 users (a 5,000-user tenant has 30), at least 3 and at most 40. */
export const PRIVILEGED_PER_1000_USERS = 6;

/** Chooses the tenant's role holders: a sample of its admins (IT staff and a few others), then other members. */
function privilegedOf(rng: Rng, users: User[]): User[] {
  if (users.length === 0) {
    return [];
  }
  const count = Math.min(40, Math.max(3, Math.round((users.length * PRIVILEGED_PER_1000_USERS) / 1000)));
  const admins = users.filter((u) => !u.guest && u.admin);
  const chosen: User[] = [];
  while (chosen.length < count && admins.length > 0) {
    chosen.push(...admins.splice(Math.floor(rng() * admins.length), 1));
  }
  chosen.push(...users.filter((u) => !u.guest && !u.admin).slice(0, count - chosen.length));
  for (const u of chosen) {
    u.privileged = true;
  }
  return chosen;
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
