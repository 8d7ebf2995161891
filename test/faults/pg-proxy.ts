// A TCP fault proxy in front of PostgreSQL (node:net, modelled on Toxiproxy). It parses the frontend (client →
// server) message stream just enough to find COMMIT, so it can drop a connection while a COMMIT is in flight.
//
// Modes (new and existing connections):
//   pass       forward both ways
//   refuse     new connections are reset at once (as if PostgreSQL were down); existing ones keep working
//   blackhole  nothing is forwarded either way (bytes are held back, as TCP would keep retransmitting them);
//              going back to `pass` delivers them
// One-shot faults:
//   resetAll()          TCP RST on every live connection (both sides)
//   armCommitDrop(...)  the next COMMIT a client sends: forward it, then drop the client connection, either at
//                       once ("unknown": the server may or may not have committed) or only when the server's reply
//                       arrives ("reply-lost": committed, but the client never learns it)
//   armCommitHook(cb)   the next COMMIT: hold it (not forwarded) and call cb("before"), or forward it, hold the reply
//                       and call cb("after"): lets the campaign SIGKILL the daemon exactly around a commit

import { createServer, type Server, Socket } from "node:net";

export type ProxyMode = "pass" | "refuse" | "blackhole";
export type CommitDrop = "unknown" | "reply-lost";

export interface ProxyCounters {
  connections: number;
  refused: number;
  resets: number;
  commitsSeen: number;
  commitDrops: number;
  commitHooks: number;
  blackholes: number;
}

interface Link {
  client: Socket;
  server: Socket;
  /** Frontend bytes not yet parsed into whole messages. */
  pending: Buffer;
  /** The first message (StartupMessage / SSLRequest) has no type byte. */
  startup: boolean;
  held: { toServer: Buffer[]; toClient: Buffer[] };
  /** Server → client data is being swallowed (after a COMMIT whose connection we drop). */
  swallow?: () => void;
  closed: boolean;
}

const SSL_REQUEST = 80877103;
const GSS_REQUEST = 80877104;

/** True when a Query ('Q') or Parse ('P') message body carries a COMMIT (or END) statement. */
export function isCommitMessage(type: number, body: Buffer): boolean {
  let sql: string;
  if (type === 0x51 /* Q */) {
    sql = body.toString("utf8").replace(/\0+$/, "");
  } else if (type === 0x50 /* P */) {
    const nameEnd = body.indexOf(0);
    if (nameEnd < 0) {
      return false;
    }
    const queryEnd = body.indexOf(0, nameEnd + 1);
    sql = body.subarray(nameEnd + 1, queryEnd < 0 ? undefined : queryEnd).toString("utf8");
  } else {
    return false;
  }
  return /^\s*(commit|end)\b/i.test(sql);
}

export class PgProxy {
  readonly counters: ProxyCounters = {
    connections: 0,
    refused: 0,
    resets: 0,
    commitsSeen: 0,
    commitDrops: 0,
    commitHooks: 0,
    blackholes: 0,
  };
  #mode: ProxyMode = "pass";
  readonly #links = new Set<Link>();
  #commitDrop: CommitDrop | undefined;
  #commitHook: { when: "before" | "after"; cb: (when: "before" | "after") => void } | undefined;
  /** COMMITs to let through before an armed drop or hook fires. */
  #skip = 0;
  readonly #server: Server;
  readonly #target: { host: string; port: number };
  port = 0;

  private constructor(target: { host: string; port: number }) {
    this.#target = target;
    this.#server = createServer((client) => this.#accept(client));
  }

  static async start(target: { host: string; port: number }): Promise<PgProxy> {
    const proxy = new PgProxy(target);
    await new Promise<void>((resolve, reject) => {
      proxy.#server.once("error", reject);
      proxy.#server.listen(0, "127.0.0.1", () => resolve());
    });
    const address = proxy.#server.address();
    proxy.port = typeof address === "object" && address ? address.port : 0;
    return proxy;
  }

  /** `url` with its host and port replaced by the proxy's. */
  url(url: string): string {
    const parsed = new URL(url);
    parsed.hostname = "127.0.0.1";
    parsed.port = String(this.port);
    return parsed.toString();
  }

  get mode(): ProxyMode {
    return this.#mode;
  }

  get liveConnections(): number {
    return this.#links.size;
  }

  setMode(mode: ProxyMode): void {
    if (mode === "blackhole" && this.#mode !== "blackhole") {
      this.counters.blackholes++;
    }
    this.#mode = mode;
    if (mode !== "blackhole") {
      for (const link of this.#links) {
        this.#flush(link);
      }
    }
  }

  /** Resets every live connection (TCP RST to the client, and the server side closed). Returns how many. */
  resetAll(): number {
    let n = 0;
    for (const link of [...this.#links]) {
      this.#kill(link);
      n++;
    }
    this.counters.resets += n;
    return n;
  }

  armCommitDrop(kind: CommitDrop, skip = 0): void {
    this.#commitDrop = kind;
    this.#skip = skip;
  }

  armCommitHook(when: "before" | "after", cb: (when: "before" | "after") => void, skip = 0): void {
    this.#commitHook = { when, cb };
    this.#skip = skip;
  }

  disarm(): void {
    this.#commitDrop = undefined;
    this.#commitHook = undefined;
  }

  get armed(): boolean {
    return this.#commitDrop !== undefined || this.#commitHook !== undefined;
  }

  async close(): Promise<void> {
    for (const link of [...this.#links]) {
      this.#kill(link);
    }
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    this.counters.connections++;
    if (this.#mode === "refuse") {
      this.counters.refused++;
      client.on("error", () => undefined);
      client.resetAndDestroy();
      return;
    }
    const server = new Socket();
    const link: Link = {
      client,
      server,
      pending: Buffer.alloc(0),
      startup: true,
      held: { toServer: [], toClient: [] },
      closed: false,
    };
    this.#links.add(link);
    client.setNoDelay(true);
    server.setNoDelay(true);
    client.on("error", () => this.#kill(link));
    server.on("error", () => this.#kill(link));
    client.on("close", () => this.#kill(link));
    server.on("close", () => this.#kill(link));
    client.pause();
    server.connect(this.#target.port, this.#target.host, () => client.resume());
    client.on("data", (chunk: Buffer) => this.#fromClient(link, chunk));
    server.on("data", (chunk: Buffer) => this.#fromServer(link, chunk));
  }

  #kill(link: Link): void {
    if (link.closed) {
      return;
    }
    link.closed = true;
    this.#links.delete(link);
    if (!link.client.destroyed) {
      link.client.resetAndDestroy();
    }
    if (!link.server.destroyed) {
      link.server.resetAndDestroy();
    }
  }

  #toServer(link: Link, bytes: Buffer): void {
    if (this.#mode === "blackhole") {
      link.held.toServer.push(bytes);
    } else if (!link.server.destroyed) {
      link.server.write(bytes);
    }
  }

  #flush(link: Link): void {
    for (const b of link.held.toServer.splice(0)) {
      if (!link.server.destroyed) {
        link.server.write(b);
      }
    }
    for (const b of link.held.toClient.splice(0)) {
      this.#fromServer(link, b);
    }
  }

  #fromServer(link: Link, chunk: Buffer): void {
    if (link.swallow) {
      link.swallow();
      return;
    }
    if (this.#mode === "blackhole") {
      link.held.toClient.push(chunk);
    } else if (!link.client.destroyed) {
      link.client.write(chunk);
    }
  }

  #fromClient(link: Link, chunk: Buffer): void {
    link.pending = link.pending.length === 0 ? chunk : Buffer.concat([link.pending, chunk]);
    let offset = 0;
    const buf = link.pending;
    while (!link.closed) {
      if (link.startup) {
        if (buf.length - offset < 8) {
          break;
        }
        const len = buf.readInt32BE(offset);
        if (len < 8) {
          // Not a startup packet (its length counts itself and a code): a length that would not advance the
          // offset would spin this loop forever.
          this.#kill(link);
          return;
        }
        if (buf.length - offset < len) {
          break;
        }
        const code = buf.readInt32BE(offset + 4);
        this.#toServer(link, buf.subarray(offset, offset + len));
        offset += len;
        if (code !== SSL_REQUEST && code !== GSS_REQUEST) {
          link.startup = false;
        }
        continue;
      }
      if (buf.length - offset < 5) {
        break;
      }
      const type = buf[offset] as number;
      const len = buf.readInt32BE(offset + 1);
      if (len < 4) {
        // A message length counts itself: anything less is garbage, and would not advance the offset.
        this.#kill(link);
        return;
      }
      if (buf.length - offset < 1 + len) {
        break;
      }
      const message = buf.subarray(offset, offset + 1 + len);
      offset += 1 + len;
      if (isCommitMessage(type, message.subarray(5))) {
        this.counters.commitsSeen++;
        if (this.#onCommit(link, message)) {
          return;
        }
        continue;
      }
      this.#toServer(link, message);
    }
    link.pending = buf.subarray(offset);
  }

  /** Returns true when the link is finished with (its remaining bytes are dropped). */
  #onCommit(link: Link, message: Buffer): boolean {
    if (this.armed && this.#skip > 0) {
      this.#skip--;
      this.#toServer(link, message);
      return false;
    }
    const hook = this.#commitHook;
    if (hook) {
      this.#commitHook = undefined;
      this.counters.commitHooks++;
      if (hook.when === "before") {
        // The COMMIT never reaches the server: the transaction rolls back when the connection goes.
        link.swallow = () => undefined;
        // Stop forwarding anything more from this client.
        link.client.removeAllListeners("data");
        link.client.on("data", () => undefined);
        hook.cb("before");
        return true;
      }
      this.#toServer(link, message);
      link.swallow = () => undefined;
      link.client.removeAllListeners("data");
      link.client.on("data", () => undefined);
      hook.cb("after");
      return true;
    }
    const drop = this.#commitDrop;
    if (drop) {
      this.#commitDrop = undefined;
      this.counters.commitDrops++;
      this.#toServer(link, message);
      if (drop === "unknown") {
        this.#kill(link);
      } else {
        link.swallow = () => {
          link.swallow = () => undefined;
          this.#kill(link);
        };
      }
      return true;
    }
    this.#toServer(link, message);
    return false;
  }
}
