// The event universe: lazily generated hour buckets (LRU-cached) merged with
// explicitly added events, versioned for re-publication, queried keyset-style.
import { generateAuditHour } from "./audits.ts";
import { parseInstant } from "./filter.ts";
import type { CompiledFilter, FilterRecord, Instant, Resource } from "./filter.ts";
import { generateHour, HOUR_MS } from "./generate.ts";
import type { GenConfig, GenEvent } from "./generate.ts";

export interface Version {
  visibleAtMs: number;
  obj: Record<string, unknown>;
  v1?: string;
  beta?: string;
}
export interface Rec {
  sec: number;
  frac: number;
  key: string;
  types: readonly string[];
  versions: Version[]; // ascending visibleAtMs
}
export interface Cursor {
  sec: number;
  frac: number;
  key: string;
}
export interface PageResult {
  items: Version[];
  last?: Cursor;
  more: boolean;
}

const V1_KEYS = new Set([
  "id",
  "createdDateTime",
  "userDisplayName",
  "userPrincipalName",
  "userId",
  "appId",
  "appDisplayName",
  "ipAddress",
  "clientAppUsed",
  "correlationId",
  "conditionalAccessStatus",
  "isInteractive",
  "riskDetail",
  "riskLevelAggregated",
  "riskLevelDuringSignIn",
  "riskState",
  "riskEventTypes",
  "riskEventTypes_v2",
  "resourceDisplayName",
  "resourceId",
  "status",
  "deviceDetail",
  "location",
  "appliedConditionalAccessPolicies",
]);
/** Properties that exist only on the beta signIn resource (dropped from v1.0 responses). */
const BETA_ONLY_KEYS = new Set([
  "ipAddressFromResourceProvider",
  "userAgent",
  "originalRequestId",
  "tokenIssuerName",
  "tokenIssuerType",
  "clientCredentialType",
  "processingTimeInMilliseconds",
  "resourceTenantId",
  "homeTenantId",
  "homeTenantName",
  "authenticationMethodsUsed",
  "authenticationRequirement",
  "signInIdentifier",
  "signInIdentifierType",
  "servicePrincipalName",
  "servicePrincipalId",
  "federatedCredentialId",
  "userType",
  "flaggedForReview",
  "isTenantRestricted",
  "autonomousSystemNumber",
  "crossTenantAccessType",
  "servicePrincipalCredentialKeyId",
  "servicePrincipalCredentialThumbprint",
  "uniqueTokenIdentifier",
  "incomingTokenType",
  "authenticationProtocol",
  "resourceServicePrincipalId",
  "signInEventTypes",
  "mfaDetail",
  "authenticationContextClassReferences",
  "authenticationProcessingDetails",
  "networkLocationDetails",
  "authenticationDetails",
  "authenticationRequirementPolicies",
  "sessionLifetimePolicies",
  "managedServiceIdentity",
  "privateLinkDetails",
  "appliedEventListeners",
  "globalSecureAccessIpAddress",
  "isThroughGlobalSecureAccess",
  "tokenProtectionStatusDetails",
  "conditionalAccessAudiences",
  "sessionId",
  "originalTransferMethod",
  "appOwnerTenantId",
  "resourceOwnerTenantId",
  "appTokenProtectionStatus",
  "authenticationAppDeviceDetails",
  "authenticationAppPolicyEvaluationDetails",
  "agent",
]);

export function versionJson(v: Version, api: "v1.0" | "beta"): string {
  // An event added with a "@simulator.json" string is served as exactly that text: the poison events tests publish
  // (numbers beyond a double, deep nesting) that JSON.stringify cannot write. Its id and time still place it.
  const verbatim = v.obj["@simulator.json"];
  if (typeof verbatim === "string") {
    return verbatim;
  }
  if (api === "beta") {
    return (v.beta ??= JSON.stringify(v.obj));
  }
  if (v.v1 === undefined) {
    const out: Record<string, unknown> = {};
    for (const [k, val] of Object.entries(v.obj)) {
      if (V1_KEYS.has(k) || !BETA_ONLY_KEYS.has(k)) {
        out[k] = val;
      }
    }
    v.v1 = JSON.stringify(out);
  }
  return v.v1;
}

function cmpRec(a: Cursor, b: Cursor): number {
  return a.sec - b.sec || a.frac - b.frac || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
}
const bucketOf = (at: Instant): number => Math.floor(at.sec / 3600);

/** Latest version visible at `nowMs`, or undefined. */
function visibleVersion(r: Rec, nowMs: number): Version | undefined {
  for (let i = r.versions.length - 1; i >= 0; i--) {
    const v = r.versions[i];
    if (v && v.visibleAtMs <= nowMs) {
      return v;
    }
  }
  return undefined;
}

interface TenantState {
  added: Map<number, Rec[]>;
  addedById: Map<string, Rec>;
  patches: Map<string, Array<{ atMs: number; patch: Record<string, unknown> }>>;
}

export interface UniverseConfig extends GenConfig {
  generate: boolean;
  genStartMs: number;
  cacheEvents?: number;
}

/** The time field of each resource's events. */
const TIME_FIELD: Record<Resource, string> = { signIns: "createdDateTime", directoryAudits: "activityDateTime" };

export class Universe {
  private readonly cfg: UniverseConfig;
  private readonly resource: Resource;
  private readonly generator: (cfg: GenConfig, tenantId: string, hour: number) => GenEvent[];
  private readonly tenants = new Map<string, TenantState>();
  private readonly cache = new Map<string, Rec[]>();
  private cached = 0;
  private seq = 0;
  private readonly genStartBucket: number;

  /** One universe per resource: sign-ins (typed by signInEventTypes) or directory audits (untyped). */
  constructor(cfg: UniverseConfig, resource: Resource = "signIns") {
    this.cfg = cfg;
    this.resource = resource;
    this.generator = resource === "signIns" ? generateHour : generateAuditHour;
    this.genStartBucket = Math.floor(cfg.genStartMs / HOUR_MS);
  }

  private state(tenantId: string): TenantState {
    let s = this.tenants.get(tenantId);
    if (!s) {
      s = { added: new Map(), addedById: new Map(), patches: new Map() };
      this.tenants.set(tenantId, s);
    }
    return s;
  }

  add(tenantId: string, events: Array<Record<string, unknown>>, visibleAtMs: number): void {
    const s = this.state(tenantId);
    const timeField = TIME_FIELD[this.resource];
    for (const obj of events) {
      const time = obj[timeField];
      const created = typeof time === "string" ? parseInstant(time) : undefined;
      const at = created ?? { sec: Math.floor(visibleAtMs / 1000), frac: (visibleAtMs % 1000) * 10_000 };
      let key = typeof obj.id === "string" ? obj.id : `~noid-${++this.seq}`;
      if (s.addedById.has(key)) {
        key = `${key}\u0000${++this.seq}`;
      }
      const types =
        this.resource !== "signIns"
          ? []
          : Array.isArray(obj.signInEventTypes)
            ? obj.signInEventTypes.filter((t): t is string => typeof t === "string")
            : [obj.isInteractive === false ? "nonInteractiveUser" : "interactiveUser"];
      const rec: Rec = { sec: at.sec, frac: at.frac, key, types, versions: [{ visibleAtMs, obj }] };
      s.addedById.set(key, rec);
      const b = bucketOf(at);
      const list = s.added.get(b) ?? [];
      list.push(rec);
      list.sort(cmpRec);
      s.added.set(b, list);
      this.cache.delete(`${tenantId}|${b}`);
    }
  }

  /** Adds a new version (shallow-merged patch) of an event. Returns false when the id is unknown. */
  republish(tenantId: string, id: string, patch: Record<string, unknown>, atMs: number, nowMs: number): boolean {
    const s = this.state(tenantId);
    const rec = s.addedById.get(id);
    if (rec) {
      const prev = rec.versions[rec.versions.length - 1];
      rec.versions.push({ visibleAtMs: atMs, obj: { ...(prev?.obj ?? {}), ...patch } });
      return true;
    }
    if (!this.cfg.generate) {
      return false;
    }
    for (let b = Math.floor(nowMs / HOUR_MS); b >= this.genStartBucket; b--) {
      if (this.bucket(tenantId, b).some((r) => r.key === id)) {
        const list = s.patches.get(id) ?? [];
        list.push({ atMs, patch });
        s.patches.set(id, list);
        this.evict(`${tenantId}|${b}`);
        return true;
      }
    }
    return false;
  }

  private evict(key: string): void {
    const l = this.cache.get(key);
    if (l) {
      this.cached -= l.length;
    }
    this.cache.delete(key);
  }

  /** All records of one hour bucket, sorted ascending. */
  bucket(tenantId: string, b: number): Rec[] {
    const key = `${tenantId}|${b}`;
    const hit = this.cache.get(key);
    if (hit) {
      this.cache.delete(key);
      this.cache.set(key, hit);
      return hit;
    }
    const s = this.state(tenantId);
    const added = s.added.get(b);
    if (!this.cfg.generate || b < this.genStartBucket) {
      return added ?? [];
    }
    const recs: Rec[] = [];
    for (const g of this.generator(this.cfg, tenantId, b)) {
      const createdMs = g.sec * 1000 + g.frac / 10_000;
      if (createdMs < this.cfg.genStartMs) {
        continue;
      }
      const versions: Version[] = [{ visibleAtMs: g.visibleAtMs, obj: g.obj }];
      const patches = [...(g.republish ? [g.republish] : []), ...(s.patches.get(String(g.obj.id)) ?? [])];
      patches.sort((x, y) => x.atMs - y.atMs);
      for (const p of patches) {
        versions.push({ visibleAtMs: p.atMs, obj: { ...versions[versions.length - 1]?.obj, ...p.patch } });
      }
      recs.push({ sec: g.sec, frac: g.frac, key: String(g.obj.id), types: g.types, versions });
    }
    if (added) {
      recs.push(...added);
      recs.sort(cmpRec);
    }
    this.cache.set(key, recs);
    this.cached += recs.length;
    const cap = this.cfg.cacheEvents ?? 100_000;
    for (const [k, v] of this.cache) {
      if (this.cached <= cap || k === key) {
        break;
      }
      this.cache.delete(k);
      this.cached -= v.length;
    }
    return recs;
  }

  private range(tenantId: string, nowMs: number): [number, number] {
    const s = this.state(tenantId);
    let lo = this.cfg.generate ? this.genStartBucket : Infinity;
    let hi = this.cfg.generate ? Math.floor(nowMs / HOUR_MS) : -Infinity;
    for (const b of s.added.keys()) {
      lo = Math.min(lo, b);
      hi = Math.max(hi, b);
    }
    return [lo, hi];
  }

  /** One page in keyset order: items strictly after `after` in the requested order. */
  page(
    tenantId: string,
    filter: CompiledFilter,
    order: "asc" | "desc",
    limit: number,
    nowMs: number,
    after?: Cursor,
  ): PageResult {
    let [lo, hi] = this.range(tenantId, nowMs);
    if (filter.lo) {
      lo = Math.max(lo, bucketOf(filter.lo.at));
    }
    if (filter.hi) {
      hi = Math.min(hi, bucketOf(filter.hi.at));
    }
    if (after && order === "desc") {
      hi = Math.min(hi, bucketOf(after));
    }
    if (after && order === "asc") {
      lo = Math.max(lo, bucketOf(after));
    }
    const items: Version[] = [];
    let last: Cursor | undefined;
    const view: FilterRecord = { sec: 0, frac: 0, types: [], obj: {} };
    const step = order === "asc" ? 1 : -1;
    for (let b = order === "asc" ? lo : hi; order === "asc" ? b <= hi : b >= lo; b += step) {
      const recs = this.bucket(tenantId, b);
      if (recs.length === 0) {
        continue;
      }
      let i = order === "asc" ? 0 : recs.length - 1;
      if (after) {
        i = seek(recs, after, order);
      }
      for (; i >= 0 && i < recs.length; i += step) {
        const r = recs[i] as Rec;
        if (this.resource === "signIns" && !filter.hasTypeFilter && !r.types.includes("interactiveUser")) {
          continue;
        }
        const v = visibleVersion(r, nowMs);
        if (!v) {
          continue;
        }
        view.sec = r.sec;
        view.frac = r.frac;
        view.types = r.types;
        view.obj = v.obj;
        if (!filter.test(view)) {
          continue;
        }
        if (items.length === limit) {
          return { items, last, more: true };
        }
        items.push(v);
        last = { sec: r.sec, frac: r.frac, key: r.key };
      }
    }
    return last ? { items, last, more: false } : { items, more: false };
  }

  /** The oracle: latest visible version of every event (all event types), newest first. */
  visible(tenantId: string, atMs: number): Array<Record<string, unknown>> {
    const [lo, hi] = this.range(tenantId, atMs);
    const out: Array<Record<string, unknown>> = [];
    for (let b = hi; b >= lo; b--) {
      const recs = this.bucket(tenantId, b);
      for (let i = recs.length - 1; i >= 0; i--) {
        const v = visibleVersion(recs[i] as Rec, atMs);
        if (v) {
          out.push(v.obj);
        }
      }
    }
    return out;
  }
}

/** Index of the first record strictly after `c` in the given order (may be out of range). */
function seek(recs: Rec[], c: Cursor, order: "asc" | "desc"): number {
  let lo = 0;
  let hi = recs.length; // first index with rec > c
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cmpRec(recs[mid] as Rec, c) <= 0) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (order === "asc") {
    return lo;
  }
  // last index with rec < c
  let j = lo - 1;
  while (j >= 0 && cmpRec(recs[j] as Rec, c) === 0) {
    j--;
  }
  return j;
}
