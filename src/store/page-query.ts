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
  stream: { write(chunk: Buffer): boolean };
}

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
      connection.stream.write(head);
      connection.stream.write(this.#page);
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
