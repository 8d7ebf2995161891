// A statement with one large Buffer parameter (a page's bytes, JsonbBytes) sent without node-postgres' copy of it.
// node-postgres writes every parameter into the Bind message's own buffer, so an 8 MB page was held twice while it
// went to the server (and the copy, a fresh 8 MB allocation per page, waited for a garbage collection to be freed).
// Here the Bind message goes out as three writes on the corked socket: the bytes before the page (its length
// prefix included), the page's own Buffer, the bytes after it. Everything else is node-postgres' Query: Parse,
// Describe, Execute and Sync, the other parameters' encoding (the valueMapper it passes), results, errors and
// query_timeout. The hook is Query.prepare calling connection.bind once per execution (pg 8, pinned in
// package-lock.json; every page stored in the tests goes through this path).

import pg from "pg";

import type { PoolClient } from "./db.ts";

interface BindConfig {
  portal?: string;
  statement?: string;
  values?: unknown[];
  binary?: boolean;
  /** node-postgres' prepareValue: a parameter as text, bytes or null. */
  valueMapper?: (value: unknown, index: number) => string | Buffer | null | undefined;
}

interface Connection {
  bind(config: BindConfig): void;
  stream: { write(chunk: Buffer, done?: () => void): boolean };
}

/** The pages whose write to a socket has not completed: libuv may still read their memory. */
const sending = new WeakSet<Buffer>();

const BIND = 0x42; // 'B'

/** Without node-postgres' valueMapper, parameters must already be text, bytes or null. */
function textOrBytes(v: unknown): string | Buffer | null {
  if (v === null || v === undefined) {
    return null;
  }
  if (typeof v === "string" || v instanceof Buffer) {
    return v;
  }
  throw new TypeError(`a parameter must be text, bytes or null without a valueMapper, got ${typeof v}`);
}

/** The Bind message for `config` with parameter `index` left out: the bytes before it and after it. */
export function bindAround(config: BindConfig, index: number, length: number): { head: Buffer; tail: Buffer } {
  const map = config.valueMapper ?? textOrBytes;
  const values = (config.values ?? []).map((v, i) => (i === index ? undefined : map(v, i)));
  const before: Buffer[] = [];
  const after: Buffer[] = [];
  const int16 = (n: number) => {
    const b = Buffer.allocUnsafe(2);
    b.writeInt16BE(n);
    return b;
  };
  const int32 = (n: number) => {
    const b = Buffer.allocUnsafe(4);
    b.writeInt32BE(n);
    return b;
  };
  before.push(Buffer.from(`${config.portal ?? ""}\0${config.statement ?? ""}\0`, "utf8"), int16(values.length));
  for (const [i, v] of values.entries()) {
    before.push(int16(i === index || v instanceof Buffer ? 1 : 0));
  }
  before.push(int16(values.length));
  let into = before;
  for (const [i, v] of values.entries()) {
    if (i === index) {
      into.push(int32(length));
      into = after;
    } else if (v === null || v === undefined) {
      into.push(int32(-1));
    } else {
      const bytes: Buffer = typeof v === "string" ? Buffer.from(v, "utf8") : v;
      into.push(int32(bytes.length), bytes);
    }
  }
  after.push(int16(1), int16(config.binary ? 1 : 0));
  const body = [...before, ...after].reduce((n, b) => n + b.length, 0);
  const header = Buffer.allocUnsafe(5);
  header[0] = BIND;
  header.writeInt32BE(4 + body + length, 1);
  return { head: Buffer.concat([header, ...before]), tail: Buffer.concat(after) };
}

class PageQuery extends pg.Query {
  readonly #page: Buffer;
  readonly #index: number;

  constructor(
    text: string,
    values: unknown[],
    index: number,
    callback: (error: Error | undefined, result: unknown) => void,
  ) {
    super({ text, values }, callback);
    this.#page = values[index] as Buffer;
    this.#index = index;
  }

  prepare(connection: Connection): void {
    // An own property over the prototype's method for this one call, removed after it.
    connection.bind = (config: BindConfig) => {
      const { head, tail } = bindAround(config, this.#index, this.#page.length);
      const page = this.#page;
      connection.stream.write(head);
      sending.add(page);
      // Called once the socket is done with the bytes: written to the kernel, or the socket destroyed.
      connection.stream.write(page, () => sending.delete(page));
      connection.stream.write(tail);
    };
    try {
      (pg.Query.prototype as unknown as { prepare(c: Connection): void }).prepare.call(this, connection);
    } finally {
      Reflect.deleteProperty(connection, "bind");
    }
  }
}

/** client.query(text, values) with values[index] a Buffer sent in place (see above); the same result. */
export function queryWithBuffer<R extends pg.QueryResultRow>(
  client: PoolClient,
  text: string,
  values: unknown[],
  index: number,
): Promise<pg.QueryResult<R>> {
  if (!(values[index] instanceof Buffer)) {
    return client.query<R>(text, values);
  }
  return new Promise((resolve, reject) => {
    client.query(
      new PageQuery(text, values, index, (error, result) =>
        error ? reject(error) : resolve(result as pg.QueryResult<R>),
      ),
    );
  });
}

/**
 * Gives a sent page's memory back now instead of at a later garbage collection. V8 collects a dead Buffer's 8 MB
 * only once the process's external memory has grown by tens of MB since the last collection, so stored pages piled
 * up beyond the page budget (PAGE_MEMORY_BYTES) until one. The Buffer's ArrayBuffer is detached (transferred to an
 * empty one, which frees its memory at once) and the Buffer reads as empty afterwards: the caller must be its last
 * user. Nothing is freed (false) while a write of it to a socket is pending (a blackholed server: the kernel's
 * buffer full), or when it is part of a larger ArrayBuffer (Node's pool for small buffers, a slice of another).
 */
export function freeSentBuffer(bytes: Buffer): boolean {
  const whole = bytes.buffer;
  if (
    sending.has(bytes) ||
    !(whole instanceof ArrayBuffer) ||
    whole.detached ||
    bytes.byteOffset !== 0 ||
    bytes.byteLength !== whole.byteLength
  ) {
    return false;
  }
  whole.transfer(0);
  return true;
}
