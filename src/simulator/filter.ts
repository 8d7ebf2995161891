// Pure parsing of the OData query options accepted by auditLogs/signIns:
// $filter (a small OData subset), $orderby, $top, $skiptoken.

export type Api = "v1.0" | "beta";
/** The list resources served: /auditLogs/signIns (time field createdDateTime), /auditLogs/directoryAudits (activityDateTime). */
export type Resource = "signIns" | "directoryAudits";
/** An instant with Graph's 100 ns precision: whole seconds + 7-digit fraction. */
export interface Instant {
  sec: number;
  frac: number;
}
export interface FilterRecord {
  sec: number;
  frac: number;
  types: readonly string[];
  obj: Record<string, unknown>;
}
interface Bound {
  at: Instant;
  inclusive: boolean;
}
export interface CompiledFilter {
  test: (r: FilterRecord) => boolean;
  lo?: Bound;
  hi?: Bound;
  /** true when the filter mentions signInEventTypes (else interactiveUser only). */
  hasTypeFilter: boolean;
}
export interface ParsedQuery {
  filter: CompiledFilter;
  filterText: string;
  order: "asc" | "desc";
  top: number;
  skiptoken?: string;
}

export class QueryError extends Error {
  readonly code: string;
  constructor(message: string, code = "BadRequest") {
    super(message);
    this.code = code;
  }
}

const INSTANT_RE = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?(Z|[+-]\d{2}:\d{2}))?$/;

/** Parses an ISO-8601 timestamp (date-only, or date-time with Z/offset). */
export function parseInstant(text: string): Instant | undefined {
  const m = INSTANT_RE.exec(text);
  if (!m) {
    return undefined;
  }
  const [, y, mo, d, h, mi, s, f, zone] = m;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h ?? 0), Number(mi ?? 0), Number(s ?? 0));
  if (!Number.isFinite(ms)) {
    return undefined;
  }
  const check = new Date(ms);
  if (check.getUTCDate() !== Number(d) || check.getUTCMonth() !== Number(mo) - 1) {
    return undefined;
  }
  if (Number(h ?? 0) > 23 || Number(mi ?? 0) > 59 || Number(s ?? 0) > 59) {
    return undefined;
  }
  let offsetSec = 0;
  if (zone && zone !== "Z") {
    const sign = zone.startsWith("-") ? -1 : 1;
    offsetSec = sign * (Number(zone.slice(1, 3)) * 3600 + Number(zone.slice(4, 6)) * 60);
  }
  return { sec: ms / 1000 - offsetSec, frac: f ? Number(f.padEnd(7, "0")) : 0 };
}

function compareInstant(a: Instant, b: Instant): number {
  return a.sec - b.sec || a.frac - b.frac;
}

// ---------------------------------------------------------------- tokenizer
type Tok = { t: "(" | ")" | "," | ":" } | { t: "word"; v: string } | { t: "str"; v: string };

function tokenize(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i] ?? "";
    if (/\s/.test(c)) {
      i++;
    } else if (c === "(" || c === ")" || c === "," || c === ":") {
      out.push({ t: c });
      i++;
    } else if (c === "'") {
      let v = "";
      i++;
      for (;;) {
        if (i >= src.length) {
          throw invalid();
        }
        if (src[i] === "'") {
          if (src[i + 1] === "'") {
            v += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        v += src[i];
        i++;
      }
      out.push({ t: "str", v });
    } else {
      const re = /[0-9-]/.test(c) ? /[0-9A-Za-z:.+_-]/ : /[A-Za-z0-9_/.]/;
      let v = "";
      while (i < src.length && re.test(src[i] ?? "")) {
        v += src[i++];
      }
      if (!v) {
        throw invalid();
      }
      out.push({ t: "word", v });
    }
  }
  return out;
}

function invalid(): QueryError {
  return new QueryError("Invalid filter clause");
}

// ------------------------------------------------------------------- parser
type Literal =
  | { t: "date"; v: Instant }
  | { t: "str"; v: string }
  | { t: "num"; v: number }
  | { t: "bool"; v: boolean }
  | { t: "null" };
type Node =
  | { k: "and" | "or"; a: Node; b: Node }
  | { k: "not"; a: Node }
  | { k: "cmp"; path: string; op: string; lit: Literal }
  | { k: "startswith"; path: string; lit: string }
  | { k: "any"; path: string; v: string; body: Node };

const OPS = new Set(["eq", "ne", "gt", "ge", "lt", "le"]);

function parse(tokens: Tok[]): Node {
  let pos = 0;
  const peek = (): Tok | undefined => tokens[pos];
  const word = (w: string): boolean => {
    const t = peek();
    if (t?.t === "word" && t.v.toLowerCase() === w) {
      pos++;
      return true;
    }
    return false;
  };
  const expect = (t: "(" | ")" | "," | ":"): void => {
    if (peek()?.t !== t) {
      throw invalid();
    }
    pos++;
  };
  const literal = (): Literal => {
    const t = tokens[pos++];
    if (!t) {
      throw invalid();
    }
    if (t.t === "str") {
      return { t: "str", v: t.v };
    }
    if (t.t !== "word") {
      throw invalid();
    }
    const lw = t.v.toLowerCase();
    if (lw === "true" || lw === "false") {
      return { t: "bool", v: lw === "true" };
    }
    if (lw === "null") {
      return { t: "null" };
    }
    if (/^-?\d+$/.test(t.v)) {
      return { t: "num", v: Number(t.v) };
    }
    const inst = parseInstant(t.v);
    if (inst) {
      return { t: "date", v: inst };
    }
    throw invalid();
  };
  const primary = (): Node => {
    const t = peek();
    if (!t) {
      throw invalid();
    }
    if (t.t === "(") {
      pos++;
      const n = orExpr();
      expect(")");
      return n;
    }
    if (t.t !== "word") {
      throw invalid();
    }
    if (word("not")) {
      return { k: "not", a: primary() };
    }
    pos++;
    if (t.v.toLowerCase() === "startswith") {
      expect("(");
      const p = tokens[pos++];
      expect(",");
      const s = tokens[pos++];
      expect(")");
      if (p?.t !== "word" || s?.t !== "str") {
        throw invalid();
      }
      return { k: "startswith", path: p.v, lit: s.v };
    }
    if (t.v.toLowerCase().endsWith("/any")) {
      expect("(");
      const v = tokens[pos++];
      if (v?.t !== "word") {
        throw invalid();
      }
      expect(":");
      const body = orExpr();
      expect(")");
      return { k: "any", path: t.v.slice(0, -4), v: v.v, body };
    }
    const op = tokens[pos++];
    if (op?.t !== "word" || !OPS.has(op.v.toLowerCase())) {
      throw invalid();
    }
    return { k: "cmp", path: t.v, op: op.v.toLowerCase(), lit: literal() };
  };
  const andExpr = (): Node => {
    let n = primary();
    while (word("and")) {
      n = { k: "and", a: n, b: primary() };
    }
    return n;
  };
  const orExpr = (): Node => {
    let n = andExpr();
    while (word("or")) {
      n = { k: "or", a: n, b: andExpr() };
    }
    return n;
  };
  const n = orExpr();
  if (pos !== tokens.length) {
    throw invalid();
  }
  return n;
}

// ----------------------------------------------------------------- compiler
const V1_PROPS = new Set(
  [
    "id",
    "appId",
    "userId",
    "correlationId",
    "clientAppUsed",
    "conditionalAccessStatus",
    "resourceDisplayName",
    "resourceId",
    "riskDetail",
    "riskLevelAggregated",
    "riskLevelDuringSignIn",
    "riskState",
    "appDisplayName",
    "userDisplayName",
    "userPrincipalName",
    "ipAddress",
    "status/errorCode",
    "location/city",
    "location/state",
    "location/countryOrRegion",
    "deviceDetail/browser",
    "deviceDetail/operatingSystem",
  ].map((p) => p.toLowerCase()),
);
const BETA_PROPS = new Set(
  [
    "servicePrincipalId",
    "servicePrincipalName",
    "userAgent",
    "authenticationRequirement",
    "originalRequestId",
    "tokenIssuerName",
    "userType",
  ].map((p) => p.toLowerCase()),
);
/** directoryAudit properties Graph documents as filterable (eq/startswith). */
const AUDIT_PROPS = new Set(
  [
    "id",
    "category",
    "correlationId",
    "result",
    "activityDisplayName",
    "loggedByService",
    "operationType",
    "initiatedBy/user/id",
    "initiatedBy/user/displayName",
    "initiatedBy/user/userPrincipalName",
    "initiatedBy/app/appId",
    "initiatedBy/app/displayName",
  ].map((p) => p.toLowerCase()),
);
const EVENT_TYPES = [
  "interactiveuser",
  "noninteractiveuser",
  "serviceprincipal",
  "managedidentity",
  "unknownfuturevalue",
];

function getPath(obj: Record<string, unknown>, path: string): unknown {
  let cur: unknown = obj;
  for (const seg of path.split("/")) {
    if (cur === null || typeof cur !== "object") {
      return undefined;
    }
    const rec = cur as Record<string, unknown>;
    const key = Object.keys(rec).find((k) => k.toLowerCase() === seg.toLowerCase());
    cur = key === undefined ? undefined : rec[key];
  }
  return cur;
}

function eqValue(actual: unknown, lit: Literal): boolean {
  if (lit.t === "null") {
    return actual === null || actual === undefined;
  }
  if (lit.t === "str") {
    return typeof actual === "string" && actual.toLowerCase() === lit.v.toLowerCase();
  }
  if (lit.t === "num") {
    return actual === lit.v;
  }
  if (lit.t === "bool") {
    return actual === lit.v;
  }
  return false;
}

function cmpResult(c: number, op: string): boolean {
  switch (op) {
    case "eq":
      return c === 0;
    case "ne":
      return c !== 0;
    case "gt":
      return c > 0;
    case "ge":
      return c >= 0;
    case "lt":
      return c < 0;
    default:
      return c <= 0;
  }
}

function compileFilter(text: string, api: Api, resource: Resource = "signIns"): CompiledFilter {
  const result: CompiledFilter = { test: () => true, hasTypeFilter: false };
  const timeField = resource === "signIns" ? "createddatetime" : "activitydatetime";
  const checkProp = (path: string): string => checkPropFor(path, api, resource);
  if (text.trim() === "") {
    return result;
  }
  const ast = parse(tokenize(text));
  const build = (n: Node, topAnd: boolean): ((r: FilterRecord) => boolean) => {
    switch (n.k) {
      case "and": {
        const a = build(n.a, topAnd);
        const b = build(n.b, topAnd);
        return (r) => a(r) && b(r);
      }
      case "or": {
        const a = build(n.a, false);
        const b = build(n.b, false);
        return (r) => a(r) || b(r);
      }
      case "not": {
        const a = build(n.a, false);
        return (r) => !a(r);
      }
      case "any": {
        if (resource !== "signIns" || n.path.toLowerCase() !== "signineventtypes") {
          throw invalid();
        }
        if (api === "v1.0") {
          throw noSuchProperty("signInEventTypes");
        }
        result.hasTypeFilter = true;
        const body = buildLambda(n.body, n.v);
        return (r) => r.types.some((t) => body(t.toLowerCase()));
      }
      case "startswith": {
        const path = checkProp(n.path);
        const lit = n.lit.toLowerCase();
        return (r) => {
          const v = getPath(r.obj, path);
          return typeof v === "string" && v.toLowerCase().startsWith(lit);
        };
      }
      case "cmp": {
        if (n.path.toLowerCase() === timeField) {
          if (n.lit.t !== "date" || n.op === "ne") {
            throw invalid();
          }
          const at = n.lit.v;
          const op = n.op;
          if (topAnd) {
            narrow(result, op, at);
          }
          return (r) => cmpResult(compareInstant(r, at), op);
        }
        if (resource === "signIns" && n.path.toLowerCase() === "signineventtypes") {
          throw api === "v1.0" ? noSuchProperty("signInEventTypes") : invalid();
        }
        const path = checkProp(n.path);
        const { op, lit } = n;
        if (op !== "eq" && op !== "ne") {
          throw invalid();
        }
        if (lit.t === "date") {
          throw invalid();
        }
        return op === "eq" ? (r) => eqValue(getPath(r.obj, path), lit) : (r) => !eqValue(getPath(r.obj, path), lit);
      }
    }
  };
  result.test = build(ast, true);
  return result;
}

function buildLambda(n: Node, v: string): (t: string) => boolean {
  if (n.k === "or" || n.k === "and") {
    const a = buildLambda(n.a, v);
    const b = buildLambda(n.b, v);
    return n.k === "or" ? (t) => a(t) || b(t) : (t) => a(t) && b(t);
  }
  if (n.k !== "cmp" || n.path !== v || (n.op !== "eq" && n.op !== "ne") || n.lit.t !== "str") {
    throw invalid();
  }
  const want = n.lit.v.toLowerCase();
  if (!EVENT_TYPES.includes(want)) {
    throw invalid();
  }
  return n.op === "eq" ? (t) => t === want : (t) => t !== want;
}

function checkPropFor(path: string, api: Api, resource: Resource): string {
  const p = path.toLowerCase();
  if (resource === "directoryAudits") {
    if (AUDIT_PROPS.has(p)) {
      return path;
    }
    throw invalid();
  }
  if (V1_PROPS.has(p) || (api === "beta" && BETA_PROPS.has(p))) {
    return path;
  }
  throw invalid();
}

function noSuchProperty(name: string): QueryError {
  return new QueryError(`Could not find a property named '${name}' on type 'microsoft.graph.signIn'.`);
}

function narrow(f: CompiledFilter, op: string, at: Instant): void {
  if (op === "ge" || op === "gt" || op === "eq") {
    const b = { at, inclusive: op !== "gt" };
    if (!f.lo || compareInstant(at, f.lo.at) > 0 || (compareInstant(at, f.lo.at) === 0 && !b.inclusive)) {
      f.lo = b;
    }
  }
  if (op === "le" || op === "lt" || op === "eq") {
    const b = { at, inclusive: op !== "lt" };
    if (!f.hi || compareInstant(at, f.hi.at) < 0 || (compareInstant(at, f.hi.at) === 0 && !b.inclusive)) {
      f.hi = b;
    }
  }
}

// ------------------------------------------------------------ query options
const NOT_ALLOWED: Record<string, string> = {
  $skip: "Skip",
  $count: "Count",
  $select: "Select",
  $expand: "Expand",
  $search: "Search",
  $format: "Format",
  $apply: "Apply",
  $compute: "Compute",
};

/** Validates the query string of a list request. Throws QueryError (HTTP 400). */
export function parseQuery(params: URLSearchParams, api: Api, resource: Resource = "signIns"): ParsedQuery {
  const timeField = resource === "signIns" ? "createdDateTime" : "activityDateTime";
  let filterText = "";
  let order: "asc" | "desc" = "desc";
  let top = 1000;
  let skiptoken: string | undefined;
  for (const [rawKey, value] of params) {
    const key = rawKey.toLowerCase();
    if (!key.startsWith("$")) {
      continue;
    }
    if (key === "$filter") {
      filterText = value;
    } else if (key === "$orderby") {
      const m = new RegExp(`^\\s*${timeField}(?:\\s+(asc|desc))?\\s*$`, "i").exec(value);
      if (!m) {
        throw new QueryError(`Invalid orderby clause: '${value}'. Only ${timeField} is supported.`);
      }
      order = (m[1]?.toLowerCase() as "asc" | "desc" | undefined) ?? "asc";
    } else if (key === "$top") {
      if (!/^\d+$/.test(value.trim())) {
        throw new QueryError(`Invalid value '${value}' for query option '$top'.`);
      }
      top = Number(value.trim());
      if (top < 1 || top > 1000) {
        throw new QueryError(`Invalid page size specified: '${value.trim()}'. Must be between 1 and 1000 inclusive.`);
      }
    } else if (key === "$skiptoken") {
      skiptoken = value;
    } else {
      const name = NOT_ALLOWED[key];
      if (name) {
        throw new QueryError(
          `Query option '${name}' is not allowed. To allow it, set the 'AllowedQueryOptions' property on EnableQueryAttribute or QueryValidationSettings.`,
        );
      }
      throw new QueryError(`The query parameter '${rawKey}' is not supported.`);
    }
  }
  const filter = compileFilter(filterText, api, resource);
  return skiptoken === undefined ? { filter, filterText, order, top } : { filter, filterText, order, top, skiptoken };
}
