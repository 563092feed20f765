/**
 * Numbers as kernel engineers type and read them: `4096`, `0x1000`, `4K`, `2M`, `1G`, and
 * sizes printed as `0x200000 (2 MiB)`.
 * @module
 */

const SUFFIX: Record<string, bigint> = {
  "": 1n,
  k: 1n << 10n,
  m: 1n << 20n,
  g: 1n << 30n,
  t: 1n << 40n,
};

/**
 * Parses a u64: decimal, `0x` hex, `0b` binary, with an optional K/M/G/T (KiB…TiB) suffix
 * (`2M`, `2MiB`, `0x10K`). Underscores are allowed as separators.
 * @throws {RangeError} with the offending text.
 */
export function parseU64(text: string): bigint {
  const t = text.trim().replace(/_/g, "");
  const m = /^(0x[0-9a-f]+|0b[01]+|\d+)\s*([kmgt]?)(i?b)?$/i.exec(t);
  if (!m || (m[1].toLowerCase().startsWith("0x") && m[3] && !m[2])) {
    throw new RangeError(`not a number: '${text}' (use 4096, 0x1000, 4K, 2M, 1G)`);
  }
  const v = BigInt(m[1]) * SUFFIX[m[2].toLowerCase()];
  if (v >= 1n << 64n) throw new RangeError(`'${text}' does not fit 64 bits`);
  return v;
}

/** Human size: `2 MiB`, `4 KiB`, `1.5 GiB`, `100 B`. */
export function humanSize(v: bigint | number): string {
  const n = BigInt(v);
  const units: [bigint, string][] = [[1n << 40n, "TiB"], [1n << 30n, "GiB"], [1n << 20n, "MiB"], [1n << 10n, "KiB"]];
  for (const [u, name] of units) {
    if (n >= u) {
      const whole = n / u;
      const frac = Number(n % u) / Number(u);
      return frac === 0 ? `${whole} ${name}` : `${(Number(whole) + frac).toFixed(2).replace(/\.?0+$/, "")} ${name}`;
    }
  }
  return `${n} B`;
}

/** Hex with 0x. */
export function hex(v: bigint | number): string {
  return `0x${BigInt(v).toString(16)}`;
}

/** `0x200000 (2 MiB)`. */
export function formatSize(v: bigint | number): string {
  return `${hex(v)} (${humanSize(v)})`;
}
