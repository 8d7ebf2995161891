// /_admin/* endpoints (no auth, loopback only): drive a simulator in another process.
import type { IncomingMessage, ServerResponse } from "node:http";
import { validateRules } from "./faults.ts";
import { readBody } from "./http.ts";
import type { Simulator, SimulatorMode } from "./types.ts";

const LOOPBACK = new Set(["127.0.0.1", "::1", "::ffff:127.0.0.1"]);
const MODES = new Set(["normal", "no-licence", "no-permission"]);

function json(res: ServerResponse, status: number, body: unknown): void {
  const s = JSON.stringify(body);
  res.writeHead(status, {
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": String(Buffer.byteLength(s)),
  });
  res.end(s);
}

function date(v: unknown, name: string): Date | undefined {
  if (v === undefined || v === null || v === "") {
    return undefined;
  }
  if (typeof v !== "string" && typeof v !== "number") {
    throw new Error(`invalid ${name}`);
  }
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) {
    throw new Error(`invalid ${name}`);
  }
  return d;
}

export async function handleAdmin(req: IncomingMessage, res: ServerResponse, url: URL, sim: Simulator): Promise<void> {
  if (!LOOPBACK.has(req.socket.remoteAddress ?? "")) {
    return json(res, 403, { error: "admin endpoints are loopback-only" });
  }
  const route = `${req.method ?? "GET"} ${url.pathname}`;
  try {
    const body = req.method === "POST" || req.method === "PUT" ? await readBody(req) : "";
    const input = (body ? JSON.parse(body) : {}) as Record<string, unknown>;
    const tenantId = typeof input.tenantId === "string" ? input.tenantId : undefined;
    switch (route) {
      case "GET /_admin/health":
        return json(res, 200, {
          ok: true,
          url: sim.url,
          now: sim.now().toISOString(),
          tenantId: sim.tenantId,
          clientId: sim.clientId,
        });
      case "GET /_admin/requests":
        return json(res, 200, { requests: sim.requests() });
      case "DELETE /_admin/requests":
        sim.resetRequests();
        return json(res, 200, { ok: true });
      case "POST /_admin/events": {
        if (!Array.isArray(input.events)) {
          throw new Error("events must be an array");
        }
        const visibleAt = date(input.visibleAt, "visibleAt");
        sim.addEvents(input.events as Array<Record<string, unknown>>, {
          ...(tenantId ? { tenantId } : {}),
          ...(visibleAt ? { visibleAt } : {}),
        });
        return json(res, 200, { ok: true, added: input.events.length });
      }
      case "GET /_admin/events": {
        const at = date(url.searchParams.get("at") ?? undefined, "at");
        const events = sim.visibleEvents(url.searchParams.get("tenantId") ?? undefined, at);
        return json(res, 200, { count: events.length, events });
      }
      case "POST /_admin/audits": {
        if (!Array.isArray(input.events)) {
          throw new Error("events must be an array");
        }
        const visibleAt = date(input.visibleAt, "visibleAt");
        sim.addAudits(input.events as Array<Record<string, unknown>>, {
          ...(tenantId ? { tenantId } : {}),
          ...(visibleAt ? { visibleAt } : {}),
        });
        return json(res, 200, { ok: true, added: input.events.length });
      }
      case "GET /_admin/audits": {
        const at = date(url.searchParams.get("at") ?? undefined, "at");
        const events = sim.visibleAudits(url.searchParams.get("tenantId") ?? undefined, at);
        return json(res, 200, { count: events.length, events });
      }
      case "POST /_admin/republish": {
        if (typeof input.id !== "string" || !input.patch || typeof input.patch !== "object") {
          throw new Error("id and patch required");
        }
        try {
          sim.republish(input.id, input.patch as Record<string, unknown>, tenantId ? { tenantId } : {});
        } catch (err) {
          return json(res, 404, { error: String(err instanceof Error ? err.message : err) });
        }
        return json(res, 200, { ok: true });
      }
      case "PUT /_admin/faults":
        sim.setFaults(validateRules(input.rules));
        return json(res, 200, { ok: true });
      case "PUT /_admin/mode":
        if (!MODES.has(String(input.mode))) {
          throw new Error("mode must be normal, no-licence or no-permission");
        }
        sim.setMode(input.mode as SimulatorMode);
        return json(res, 200, { ok: true });
      case "PUT /_admin/clock":
        if (typeof input.offsetMs !== "number") {
          throw new Error("offsetMs must be a number");
        }
        sim.setClockOffset(input.offsetMs);
        return json(res, 200, { ok: true, now: sim.now().toISOString() });
      default:
        return json(res, 404, { error: `no admin route ${route}` });
    }
  } catch (err) {
    return json(res, 400, { error: err instanceof Error ? err.message : String(err) });
  }
}
