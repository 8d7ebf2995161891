// Seeded pseudo-random helpers. Everything the simulator generates is a pure
// function of a seed, so two runs with the same seed serve identical data.

export type Rng = () => number;

/** mulberry32: small, fast, good enough for synthetic data. Returns [0, 1). */
export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** 32-bit FNV-1a style hash of any number of string/number parts, then mixed. */
export function hash32(...parts: Array<string | number>): number {
  let h = 0x811c9dc5;
  for (const part of parts) {
    const s = String(part);
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
    h ^= 0x1f;
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function rngFor(...parts: Array<string | number>): Rng {
  return mulberry32(hash32(...parts));
}

export function int(rng: Rng, min: number, maxInclusive: number): number {
  return min + Math.floor(rng() * (maxInclusive - min + 1));
}

export function pick<T>(rng: Rng, items: readonly T[]): T {
  const item = items[Math.floor(rng() * items.length)];
  if (item === undefined) {
    throw new Error("pick from empty list");
  }
  return item;
}

/** Pick from [weight, value] pairs. */
export function weighted<T>(rng: Rng, items: ReadonlyArray<readonly [number, T]>): T {
  let total = 0;
  for (const [w] of items) {
    total += w;
  }
  let r = rng() * total;
  for (const [w, v] of items) {
    r -= w;
    if (r < 0) {
      return v;
    }
  }
  const last = items[items.length - 1];
  if (last === undefined) {
    throw new Error("weighted pick from empty list");
  }
  return last[1];
}

export function chance(rng: Rng, p: number): boolean {
  return rng() < p;
}

/** Standard normal via Box-Muller. */
function normal(rng: Rng): number {
  const u = Math.max(rng(), 1e-12);
  const v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** Poisson sample (Knuth for small lambda, normal approximation for large). */
export function poisson(rng: Rng, lambda: number): number {
  if (lambda <= 0) {
    return 0;
  }
  if (lambda > 30) {
    return Math.max(0, Math.round(lambda + Math.sqrt(lambda) * normal(rng)));
  }
  const l = Math.exp(-lambda);
  let k = 0;
  let p = 1;
  do {
    k++;
    p *= rng();
  } while (p > l);
  return k - 1;
}

/** Log-normal latency with the given median and 99th percentile, capped. */
export function logNormalSeconds(rng: Rng, p50: number, p99: number, max: number): number {
  const mu = Math.log(Math.max(p50, 1e-3));
  const sigma = Math.max(0, Math.log(Math.max(p99, p50, 1e-3) / Math.max(p50, 1e-3)) / 2.326);
  return Math.min(max, Math.exp(mu + sigma * normal(rng)));
}

const HEX = "0123456789abcdef";

/** UUID v4-shaped string from the rng. */
export function uuid(rng: Rng): string {
  let s = "";
  for (let i = 0; i < 32; i++) {
    let d = Math.floor(rng() * 16);
    if (i === 12) {
      d = 4;
    } else if (i === 16) {
      d = 8 + (d & 3);
    }
    s += HEX[d];
    if (i === 7 || i === 11 || i === 15 || i === 19) {
      s += "-";
    }
  }
  return s;
}
