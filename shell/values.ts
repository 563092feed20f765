/**
 * Parsing of typed values (numbers, flag lists, addresses, byte lists) into what the API
 * takes, throwing UsageError so that nothing is sent on bad input.
 * @module
 */

import { type FlagSet, parseU64 } from "../core.ts";
import { UsageError } from "./usage_error.ts";

/** A u64 typed as 4096, 0x1000, 4K, 2M, 1G. */
export function num(text: string | true | undefined, what: string): bigint {
  if (text === undefined || text === true) throw new UsageError(`missing value for ${what}`);
  if (/^\s*-/.test(text)) {
    throw new UsageError(`${what}: '${text}' is negative; numbers here are unsigned (4096, 0x1000, 4K, 2M, 1G)`);
  }
  try {
    return parseU64(text);
  } catch (e) {
    throw new UsageError(`${what}: ${(e as Error).message}`);
  }
}

/** A number that must fit a JS safe integer (counts, slot ids, lengths of reads). */
export function small(text: string | true | undefined, what: string, max = 0xffff_ffff): number {
  const v = num(text, what);
  if (v > BigInt(max)) throw new UsageError(`${what}: ${text} is larger than ${max}`);
  return Number(v);
}

/** Flag names through a FlagSet (`mmap,init-shared`, raw bits allowed). */
export function flags(set: FlagSet, text: string | true | undefined, what: string): bigint {
  if (text === undefined) return 0n;
  if (text === true) throw new UsageError(`missing value for ${what}`);
  try {
    return set.parse(text);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** A byte value 0..255. */
export function byte(text: string, what: string): number {
  const v = num(text, what);
  if (v > 255n) throw new UsageError(`${what}: ${text} is not a byte (0..255)`);
  return Number(v);
}

/** Where `x/` and `write` go: a guest physical address, or an object and an offset (`gmem0:0x1000`). */
export type Address = { kind: "gpa"; gpa: bigint } | { kind: "obj"; name: string; offset: bigint };

/** Parses `0x1000`, `4G`, `gmem0:0x1000`, `gmem0` (offset 0), `map0:16`. */
export function address(text: string | undefined): Address {
  if (text === undefined) throw new UsageError("missing address (a GPA like 0x100000000, or gmem0:offset)");
  const m = /^([a-z]+\d+)(?::(.*))?$/i.exec(text);
  if (m) return { kind: "obj", name: m[1], offset: m[2] === undefined || m[2] === "" ? 0n : num(m[2], "offset") };
  return { kind: "gpa", gpa: num(text, "address") };
}

/** What `write` puts: literal bytes, or `fill:0xaa[:len]`. */
export type WriteData = { kind: "bytes"; bytes: Uint8Array } | { kind: "fill"; value: number; length: bigint };

/** Parses `0xaa 0xbb …`, `aabbcc` hex strings (with `hex:`), `"text"` with `str:`, or `fill:V[:LEN]`. */
export function writeData(words: string[]): WriteData {
  if (words.length === 0) {
    throw new UsageError("missing data (bytes like 0xaa 0x55, hex:aa55, str:text or fill:0xaa[:len])");
  }
  if (words.length === 1 && words[0].startsWith("fill:")) {
    const [, v, len] = words[0].split(":");
    return {
      kind: "fill",
      value: byte(v ?? "", "fill value"),
      length: len === undefined ? 4096n : num(len, "fill length"),
    };
  }
  const out: number[] = [];
  for (const w of words) {
    if (w.startsWith("hex:")) {
      const h = w.slice(4);
      if (!/^([0-9a-f]{2})*$/i.test(h)) throw new UsageError(`bad hex string '${w}' (an even number of hex digits)`);
      for (let i = 0; i < h.length; i += 2) out.push(parseInt(h.slice(i, i + 2), 16));
    } else if (w.startsWith("str:")) out.push(...new TextEncoder().encode(w.slice(4)));
    else out.push(byte(w, "byte"));
  }
  if (out.length > 1 << 20) throw new UsageError("too many bytes (use fill: for large ranges)");
  return { kind: "bytes", bytes: new Uint8Array(out) };
}

/** One of a fixed set of words. */
export function choice<T extends string>(text: string | undefined, options: readonly T[], what: string): T {
  if (text === undefined) throw new UsageError(`missing ${what} (${options.join("|")})`);
  if (!(options as readonly string[]).includes(text)) {
    throw new UsageError(`bad ${what} '${text}' (one of ${options.join(", ")})`);
  }
  return text as T;
}
