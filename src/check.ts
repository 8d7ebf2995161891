// `check`: a preflight per tenant. Gets a token, asks Graph for one event per enabled stream and for the oldest
// window GRAPH_RETENTION promises, and says for each failure what to fix. The result is kept in tenant_checks.

import type { Ingester } from "./app.ts";
import type { Config, TenantConfig } from "./config.ts";
import { diagnose, EXIT, type ExitCode } from "./errors.ts";
import { auditLogUrl } from "./graph/audit-logs.ts";
import { type StreamSpec, streamSpec } from "./events/streams.ts";
import type { Pool } from "./store/db.ts";
import { formatDuration, MINUTE } from "./time.ts";

interface CheckItem {
  name: string;
  ok: boolean;
  detail: string;
  /** What to do when it failed. */
  fix?: string;
  /** A failure that may pass when `check` runs again later (network, Graph unavailable, throttling). */
  temporary?: boolean;
}

export interface TenantCheck {
  tenantId: string;
  name: string;
  ok: boolean;
  items: CheckItem[];
}

const SAVE_CHECK = `
insert into tenant_checks (tenant_id, checked_at, ok, results) values ($1, $2, $3, $4)
on conflict (tenant_id) do update set checked_at = excluded.checked_at, ok = excluded.ok, results = excluded.results`;

/** A failed item for `error`: what happened, the fix and whether it is temporary, from the error's type. */
function failedItem(name: string, error: unknown): CheckItem {
  const { detail, fix, temporary } = diagnose(error);
  return { name, ok: false, detail, fix, temporary };
}

/** 0 when every item passed; 78 when one failed for a reason retrying will not fix; 75 when all failures are temporary. */
export function checkExitCode(checks: readonly TenantCheck[]): ExitCode {
  const failed = checks.flatMap((c) => c.items.filter((i) => !i.ok));
  if (failed.length === 0) {
    return EXIT.ok;
  }
  return failed.some((i) => i.temporary !== true) ? EXIT.config : EXIT.temporary;
}

async function probe(
  ingester: Ingester,
  tenant: TenantConfig,
  stream: StreamSpec,
  from: Date,
  to: Date,
  signal: AbortSignal,
) {
  const graph = ingester.graphFor(tenant.tenantId);
  const url = auditLogUrl({
    graphEndpoint: graph.endpoint,
    version: stream.version,
    resource: stream.resource,
    from,
    to,
    top: 1,
    ...(stream.extraFilter ? { extraFilter: stream.extraFilter } : {}),
  });
  return graph.getPage(url, signal);
}

/** Runs every check of every tenant; never throws for a tenant's failure. */
export async function runChecks(
  config: Config,
  ingester: Ingester,
  db: Pool,
  now: Date,
  signal: AbortSignal,
): Promise<TenantCheck[]> {
  const results: TenantCheck[] = [];
  for (const tenant of config.tenants) {
    const items: CheckItem[] = [];
    const graph = ingester.graphFor(tenant.tenantId);
    let tokenOk = false;
    try {
      await graph.prepare(signal);
      tokenOk = true;
      items.push({
        name: "token",
        ok: true,
        detail: `access token for ${tenant.graphEndpoint} obtained (${tenant.auth.kind})`,
      });
    } catch (error) {
      items.push(failedItem("token", error));
    }
    if (tokenOk) {
      for (const name of tenant.streams) {
        const stream = streamSpec(name, tenant.interactiveApiVersion);
        try {
          const page = await probe(ingester, tenant, stream, new Date(now.getTime() - 60 * MINUTE), now, signal);
          items.push({
            name: `stream ${name}`,
            ok: true,
            detail: `${stream.version}/auditLogs/${stream.resource} answered (${page.length} event in the last hour)`,
          });
        } catch (error) {
          items.push(failedItem(`stream ${name}`, error));
        }
      }
      const first = streamSpec(tenant.streams[0] ?? "interactiveUser", tenant.interactiveApiVersion);
      const horizon = new Date(now.getTime() - config.retentionMs + 60 * MINUTE);
      try {
        await probe(ingester, tenant, first, horizon, new Date(horizon.getTime() + 60 * MINUTE), signal);
        items.push({
          name: "retention",
          ok: true,
          detail: `Graph serves events from ${formatDuration(config.retentionMs)} ago (GRAPH_RETENTION)`,
        });
      } catch (error) {
        const item = failedItem("retention", error);
        // A temporary failure (a 503, throttling) says nothing about the retention: only a refusal does.
        items.push(
          item.temporary
            ? item
            : {
                ...item,
                fix: `Graph does not serve ${formatDuration(config.retentionMs)} back: set GRAPH_RETENTION to the tenant's retention (7d on Entra ID Free, 30d on P1/P2)`,
              },
        );
      }
    }
    const check: TenantCheck = { tenantId: tenant.tenantId, name: tenant.name, ok: items.every((i) => i.ok), items };
    await db.query(SAVE_CHECK, [tenant.tenantId, now, check.ok, JSON.stringify(items)]);
    results.push(check);
  }
  return results;
}

/** The checklist for people. */
export function formatChecks(checks: readonly TenantCheck[]): string {
  const lines: string[] = [];
  for (const check of checks) {
    lines.push(
      `${check.ok ? "✔" : "✘"} tenant ${check.name}${check.name !== check.tenantId ? ` (${check.tenantId})` : ""}`,
    );
    for (const item of check.items) {
      lines.push(`  ${item.ok ? "✔" : "✘"} ${item.name}: ${item.detail}`);
      if (!item.ok && item.fix) {
        lines.push(`      fix: ${item.fix}`);
      }
    }
  }
  return lines.join("\n");
}
