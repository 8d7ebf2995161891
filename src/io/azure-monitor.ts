// Azure Monitor diagnostic-settings records: what Entra ID's diagnostic settings write to a storage account
// (insights-logs-<category>/resourceId=…/y=…/m=…/d=…/h=…/m=00/PT1H.json) or an Event Hub. Each record is
//   { "time", "resourceId", "operationName", "category", "tenantId", "resultType", "correlationId", …,
//     "properties": { the Graph-shaped signIn or directoryAudit } }
// as JSON lines or `{"records": [ … ]}`. The event is `properties`, stored as its text in the record (numbers exact);
// the record's category names the stream (properties carry no signInEventTypes).

/** Where each Entra ID category goes; other categories (ProvisioningLogs, RiskyUsers, …) are counted and skipped. */
const AZURE_MONITOR_CATEGORIES: Readonly<
  Record<string, { table: "sign_ins" | "directory_audits"; stream: string; timeField: string }>
> = {
  signinlogs: { table: "sign_ins", stream: "interactiveUser", timeField: "createdDateTime" },
  noninteractiveusersigninlogs: { table: "sign_ins", stream: "nonInteractiveUser", timeField: "createdDateTime" },
  serviceprincipalsigninlogs: { table: "sign_ins", stream: "servicePrincipal", timeField: "createdDateTime" },
  managedidentitysigninlogs: { table: "sign_ins", stream: "managedIdentity", timeField: "createdDateTime" },
  auditlogs: { table: "directory_audits", stream: "directoryAudits", timeField: "activityDateTime" },
};

/** Marks an event whose `properties` lacked its time and got the record's `time` (the only mapping done). */
const AZURE_MONITOR_SOURCE = "azureMonitor";

/** True for an Azure Monitor resource-log record: a `category` string and a `properties` object, with `time`. */
export function isAzureMonitorRecord(e: Record<string, unknown>): boolean {
  const p = e.properties;
  return (
    typeof e.category === "string" &&
    "time" in e &&
    p !== null &&
    typeof p === "object" &&
    !Array.isArray(p) &&
    !("createdDateTime" in e) &&
    !("activityDateTime" in e)
  );
}

export type Unwrapped =
  | { table: "sign_ins" | "directory_audits"; stream: string; value: Record<string, unknown>; text: string }
  | { skipped: string };

/**
 * The event inside a record (`isAzureMonitorRecord`), given the record's parsed value and its JSON text: the
 * `properties` text as in the file; when properties has no event time (seen in Elastic's test records), the record's
 * `time` is added as createdDateTime/activityDateTime with `"@signinIngest.source": "azureMonitor"`. A category
 * other than the five Entra ID ones gives `{ skipped: category }`.
 */
export function unwrapRecord(record: Record<string, unknown>, text: string, sourceKey: string): Unwrapped {
  const category = record.category as string;
  const target = AZURE_MONITOR_CATEGORIES[category.toLowerCase()];
  if (target === undefined) {
    return { skipped: category };
  }
  const value = record.properties as Record<string, unknown>;
  const span = memberSpan(text, "properties");
  if (span === undefined) {
    throw new Error("an Azure Monitor record's properties were not found in its text");
  }
  let eventText = text.slice(span.start, span.end);
  if (!(target.timeField in value) && typeof record.time === "string") {
    const added = { [target.timeField]: record.time, [sourceKey]: AZURE_MONITOR_SOURCE };
    const inner = eventText.slice(1).trimStart();
    const members = JSON.stringify(added).slice(1, -1);
    eventText = `{${members}${inner.startsWith("}") ? "" : ","}${inner}`;
    return { table: target.table, stream: target.stream, value: { ...added, ...value }, text: eventText };
  }
  return { table: target.table, stream: target.stream, value, text: eventText };
}

/**
 * The text span of the value of a top-level member of a JSON object text that JSON.parse accepted (the last one
 * when the key repeats, as JSON.parse does), or undefined.
 */
function memberSpan(text: string, key: string): { start: number; end: number } | undefined {
  let depth = 0;
  let expectKey = false;
  let currentKey: string | undefined;
  let valueStart = -1;
  let waitingValue = false;
  let found: { start: number; end: number } | undefined;
  const close = (at: number): void => {
    if (valueStart >= 0 && currentKey === key) {
      found = { start: valueStart, end: text.slice(0, at).trimEnd().length };
    }
    valueStart = -1;
    currentKey = undefined;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c === " " || c === "\n" || c === "\r" || c === "\t") {
      continue;
    }
    if (waitingValue && depth === 1) {
      valueStart = i;
      waitingValue = false;
    }
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') {
        j += text[j] === "\\" ? 2 : 1;
      }
      if (depth === 1 && expectKey) {
        currentKey = JSON.parse(text.slice(i, j + 1)) as string;
        expectKey = false;
      }
      i = j;
    } else if (c === "{" || c === "[") {
      depth++;
      if (depth === 1) {
        expectKey = true;
      }
    } else if (c === "}" || c === "]") {
      if (depth === 1) {
        close(i);
      }
      depth--;
    } else if (c === "," && depth === 1) {
      close(i);
      expectKey = true;
    } else if (c === ":" && depth === 1) {
      waitingValue = true;
    }
  }
  return found;
}
