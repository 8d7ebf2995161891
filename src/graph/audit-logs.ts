// Builds audit-log list queries (sign-ins and directory audits) the way Graph accepts them: unquoted UTC literals,
// ge/le on the time field.

export interface AuditLogQuery {
  graphEndpoint: string;
  version: "v1.0" | "beta";
  /** Default signIns (createdDateTime); directoryAudits uses activityDateTime. */
  resource?: "signIns" | "directoryAudits";
  from: Date;
  to: Date;
  top: number;
  /** Extra filter clause ANDed to the time range, e.g. a beta signInEventTypes clause. */
  extraFilter?: string;
}

/** `2026-11-28T03:05:00Z`: whole seconds print without fractions, as Microsoft's examples do. */
function graphDateTime(at: Date): string {
  return at.toISOString().replace(/\.000Z$/, "Z");
}

/** The URL of one time range of `/auditLogs/signIns` or `/auditLogs/directoryAudits`. */
export function auditLogUrl(query: AuditLogQuery): string {
  const resource = query.resource ?? "signIns";
  const field = resource === "signIns" ? "createdDateTime" : "activityDateTime";
  const range = `${field} ge ${graphDateTime(query.from)} and ${field} le ${graphDateTime(query.to)}`;
  const filter = query.extraFilter ? `(${range}) and ${query.extraFilter}` : range;
  const params = new URLSearchParams({ $filter: filter, $top: String(query.top) });
  // URLSearchParams encodes spaces as '+'; Graph wants %20 inside $filter.
  return `${query.graphEndpoint}/${query.version}/auditLogs/${resource}?${params.toString().replace(/\+/g, "%20")}`;
}
