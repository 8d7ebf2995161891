// Poison events of every sort issue 12 reproduced (values JavaScript accepts and PostgreSQL refused, failing their
// whole page), shaped like the simulator's events so tests and the fault campaign can publish them
// (sim.addEvents, or POST /_admin/events). Sorts JSON.stringify cannot write (a number beyond a double, deep
// nesting) carry their exact text in "@simulator.json", which the simulator serves verbatim.

export type PoisonKind =
  | "surrogate"
  | "nul"
  | "huge-number"
  | "deep-valid"
  | "deep-rejected"
  | "impossible-date"
  | "offset-out-of-range"
  | "long-user-principal-name"
  | "long-country";

export interface PoisonEvent {
  kind: PoisonKind;
  /** The id the event carries (the deep-rejected one has none: it is found by `marker` in its raw text). */
  id: string | undefined;
  /** A string found in the event's raw text (in rejected_events.raw_text, or sign_ins.raw). */
  marker: string;
  /**
   * "stored": the event must be in sign_ins (its typed column may be cut); "rejected": in rejected_events with a
   * reason matching `reason`.
   */
  expect: "stored" | "rejected";
  reason?: RegExp;
  event: Record<string, unknown>;
}

/** Text no compressor shrinks (a btree index row compresses long values first), deterministic per seed. */
export function incompressible(length: number, seed: number): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  let state = (seed >>> 0) ^ 0x9e3779b9;
  let out = "";
  for (let i = 0; i < length; i++) {
    // xorshift32
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    out += alphabet[(state >>> 0) % alphabet.length];
  }
  return out;
}

function nested(levels: number): string {
  return `${"[".repeat(levels)}${"]".repeat(levels)}`;
}

/**
 * One poison event of each sort, with ids `${tag}-<kind>` and times inside [from, to] (an impossible date has no
 * instant: the simulator places it at the moment it is published, which should be inside the window read).
 */
export function poisonEvents(window: { from: Date; to: Date }, tag: string, seed = 1): PoisonEvent[] {
  const span = window.to.getTime() - window.from.getTime();
  const at = (fraction: number): string => new Date(window.from.getTime() + Math.floor(span * fraction)).toISOString();
  const base = (kind: PoisonKind, fraction: number) => ({
    id: `${tag}-${kind}`,
    createdDateTime: at(fraction),
    userPrincipalName: `${tag}@example.com`,
    status: { errorCode: 0 },
  });
  const verbatim = (kind: PoisonKind, fraction: number, extra: string): Record<string, unknown> => {
    const event = base(kind, fraction);
    const text = JSON.stringify(event);
    return { ...event, "@simulator.json": `${text.slice(0, -1)},${extra}}` };
  };
  // "+23:59" written so that the instant the simulator reads still falls in the window.
  const offsetTarget = new Date(window.from.getTime() + Math.floor(span * 0.6));
  const local = new Date(offsetTarget.getTime() + (23 * 60 + 59) * 60_000).toISOString().slice(0, 19);
  const year = new Date(window.from.getTime() + span / 2).getUTCFullYear();
  const ids = (kind: PoisonKind) => `${tag}-${kind}`;
  return [
    {
      kind: "surrogate",
      id: ids("surrogate"),
      marker: ids("surrogate"),
      expect: "rejected",
      reason: /unpaired UTF-16 surrogate/,
      event: { ...base("surrogate", 0.1), userDisplayName: "Ann \ud800 Lee" },
    },
    {
      kind: "nul",
      id: ids("nul"),
      marker: ids("nul"),
      expect: "rejected",
      reason: /U\+0000/,
      event: { ...base("nul", 0.2), userDisplayName: "Ann\u0000" },
    },
    {
      kind: "huge-number",
      id: ids("huge-number"),
      marker: "1e999999",
      expect: "rejected",
      reason: /numeric/,
      event: verbatim("huge-number", 0.3, `"processingTimeInMilliseconds":1e999999`),
    },
    {
      kind: "deep-valid",
      id: ids("deep-valid"),
      marker: ids("deep-valid"),
      expect: "rejected",
      reason: /nested deeper/,
      event: verbatim("deep-valid", 0.4, `"authenticationDetails":${nested(20_000)}`),
    },
    {
      kind: "deep-rejected",
      id: undefined,
      marker: `${tag}-deep-rejected`,
      expect: "rejected",
      reason: /nested deeper/,
      event: {
        createdDateTime: at(0.5),
        "@simulator.json": `{"createdDateTime":"${at(0.5)}","note":"${tag}-deep-rejected","x":${nested(5_000)}}`,
      },
    },
    {
      kind: "impossible-date",
      id: ids("impossible-date"),
      marker: ids("impossible-date"),
      expect: "rejected",
      reason: /createdDateTime/,
      event: { ...base("impossible-date", 0.5), createdDateTime: `${year}-02-30T10:00:00Z` },
    },
    {
      kind: "offset-out-of-range",
      id: ids("offset-out-of-range"),
      marker: ids("offset-out-of-range"),
      expect: "rejected",
      reason: /createdDateTime/,
      event: { ...base("offset-out-of-range", 0.6), createdDateTime: `${local}+23:59` },
    },
    {
      kind: "long-user-principal-name",
      id: ids("long-user-principal-name"),
      marker: ids("long-user-principal-name"),
      expect: "stored",
      event: {
        ...base("long-user-principal-name", 0.7),
        userPrincipalName: `${incompressible(3000, seed)}@example.com`,
        location: { city: "Leeds", countryOrRegion: "GB", geoCoordinates: { latitude: 53.8, longitude: -1.55 } },
        isInteractive: true,
      },
    },
    {
      kind: "long-country",
      id: ids("long-country"),
      marker: ids("long-country"),
      expect: "stored",
      event: {
        ...base("long-country", 0.8),
        location: {
          city: incompressible(3000, seed + 1),
          countryOrRegion: incompressible(3000, seed + 2),
          geoCoordinates: { latitude: 51.5, longitude: -0.12 },
        },
        isInteractive: true,
      },
    },
  ];
}
