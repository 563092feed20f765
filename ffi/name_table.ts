/**
 * Inverting a number → name table (caps, exit reasons, errno) into name → number. A plain loop:
 * `Object.fromEntries(Object.entries(t).map(…))` over the 250 caps cost twice as much at every
 * start of every kvmsh process.
 * @module
 */

/** `{ 3: "USER_MEMORY" }` → `{ USER_MEMORY: 3 }`, plus `extra` entries; frozen. */
export function byName(
  names: Readonly<Record<number, string>>,
  extra: Record<string, number> = {},
): Readonly<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const n in names) out[names[n]] = Number(n);
  return Object.freeze(Object.assign(out, extra));
}
