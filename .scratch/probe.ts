import pg from "pg";
const c = new pg.Client({ connectionString: process.argv[2] });
await c.connect();
const q = async (label: string, sql: string, params: unknown[] = []) => {
  try { const r = await c.query(sql, params); console.log(label, "OK", JSON.stringify(r.rows[0]).slice(0, 100)); }
  catch (e: any) { console.log(label, "ERR", e.code, e.message.slice(0, 120)); }
};
console.log((await c.query("show server_version")).rows[0], (await c.query("show max_stack_depth")).rows[0]);
const J = "select $1::jsonb is not null as ok";
for (const n of ["0e9999999999","0e-9999999999","0e2147483647","0e2147483648","0e-2147483648", "1e131071", "0.0000001e131078", "0.0000001e131079"]) await q(n, J, [`{"a":${n}}`]);
await c.end(); process.exit(0);
for (const n of ["1e999999", "1e131071", "1e131072", "9e131071", "1e-16383", "1e-16384", "0e999999", "0e-16384", "0e-999999", "0e1073741822", "0e1073741823","0.1e-16382","0.1e-16383", "1"+"0".repeat(131072), "1"+"0".repeat(131071), "0."+"0".repeat(16382)+"1", "0."+"0".repeat(16383)+"1", "1.5e-16383", "15e-16384", "100e-16385", "0.0e-16383", "0.00e-16382", "1e+0131071", "1E5", "-1e999999", "1e00000000000000000000000000000001", "0e-00000000000000000016383", "1e-1073741823"]) {
  await q(n.slice(0, 40) + (n.length > 40 ? `…(${n.length})` : ""), J, [`{"a":${n}}`]);
}
await q("lone hi", J, ['{"a":"\\ud800"}']);
await q("lone lo", J, ['{"a":"\\udc00"}']);
await q("pair", J, ['{"a":"\\ud83d\\ude00"}']);
await q("hi+x", J, ['{"a":"\\ud800x"}']);
await q("hi+hi", J, ['{"a":"\\ud800\\ud800"}']);
await q("key", J, ['{"\\ud800":1}']);
await q("nul", J, ['{"a":"\\u0000"}']);
for (const d of [1000, 2000, 5000, 6000, 8000, 10000, 20000]) await q("depth " + d, J, ["[".repeat(d) + "]".repeat(d)]);
for (const d of [1000, 5000, 10000, 20000]) await q("odepth " + d, J, ['{"a":'.repeat(d) + "1" + "}".repeat(d)]);
const T = "select $1::timestamptz as t";
for (const t of ["2026-02-30T10:00:00Z", "2026-01-01T10:00:00+23:59", "2026-01-01T10:00:00+15:59", "2026-01-01T10:00:00+16:00", "2026-01-01T10:00:00+14:00","2026-01-01T24:00:00Z", "2026-01-01T23:59:60Z", "2026-01-01T10:60:00Z", "2026-01-01T10:00:00.9999999Z", "2026-01-01T10:00:00-00:00", "2026-01-01T10:00:00+00:60", "0000-01-01T00:00:00Z"]) await q(t, T, [t]);
await c.end();
