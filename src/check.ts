// `check`: a preflight per tenant. Gets a token, asks Graph for one event per enabled stream and for the oldest
// window GRAPH_RETENTION promises, and says for each failure what to fix. The result is kept in tenant_checks.

import type { Ingester } from "./app.ts";
import type { Config, TenantConfig } from "./config.ts";
import { AccessError, CredentialError, GraphProtocolError } from "./errors.ts";
import { signInsUrl } from "./graph/signins.ts";
import type { StreamSpec } from "./ingest/reader.ts";
import { streamSpec } from "./ingest/streams.ts";
import type { Pool } from "./store/db.ts";
import { formatDuration, MINUTE } from "./time.ts";

export interface CheckItem {
  name: string;
  ok: boolean;
  detail: string;
  /** What to do when it failed. */
  fix?: string;
}

export interface TenantCheck {
  tenantId: string;
  name: string;
  ok: boolean;
  items: CheckItem[];
}

export const SAVE_CHECK = `
insert into tenant_checks (tenant_id, checked_at, ok, results) values ($1, $2, $3, $4)
on conflict (tenant_id) do update set checked_at = excluded.checked_at, ok = excluded.ok, results = excluded.results`;

function describe(error: unknown): { detail: string; fix: string } {
  if (error instanceof AccessError) {
    return { detail: error.message.split(". Fix: ")[0] ?? error.message, fix: error.fix };
  }
  if (error instanceof CredentialError) {
    const [detail, fix] = error.message.split(". Fix: ");
    return { detail: detail ?? error.message, fix: fix ?? "check AZURE_TENANT_ID, AZURE_CLIENT_ID and the credential" };
  }
  if (error instanceof GraphProtocolError && error.status === 400) {
    return {
      detail: error.message,
      fix: "Graph refused the query: beta streams may be unavailable in this cloud, or the date is beyond the tenant's retention",
    };
  }
  return {
    detail: (error as Error).message,
    fix: "a temporary problem (network, Graph or throttling): run check again",
  };
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
  const url = signInsUrl({
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
      items.push({ name: "token", ok: false, ...describe(error) });
    }
    if (tokenOk) {
      for (const name of tenant.streams) {
        const stream = streamSpec(name, tenant.interactiveApiVersion);
        try {
          const page = await probe(ingester, tenant, stream, new Date(now.getTime() - 60 * MINUTE), now, signal);
          items.push({
            name: `stream ${name}`,
            ok: true,
            detail: `${stream.version}/auditLogs/${stream.resource} answered (${page.value.length} event in the last hour)`,
          });
        } catch (error) {
          items.push({ name: `stream ${name}`, ok: false, ...describe(error) });
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
        const { detail } = describe(error);
        items.push({
          name: "retention",
          ok: false,
          detail,
          fix: `Graph does not serve ${formatDuration(config.retentionMs)} back: set GRAPH_RETENTION to the tenant's retention (7d on Entra ID Free, 30d on P1/P2)`,
        });
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
