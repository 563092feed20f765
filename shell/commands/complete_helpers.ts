/**
 * Value completers shared by commands: object names, FlagSet lists (`mmap,<TAB>`), fixed words.
 * @module
 */

import type { FlagSet } from "../../core.ts";
import type { Kind } from "../session.ts";
import type { Completer } from "./types.ts";

/** Live object names of a kind. */
export function objects(...kinds: Kind[]): Completer {
  return (ctx, prefix) => kinds.flatMap((k) => ctx.names(k)).filter((n) => n.startsWith(prefix));
}

/** Fixed words. */
export function words(list: readonly string[] | (() => readonly string[])): Completer {
  return (_ctx, prefix) => (typeof list === "function" ? list() : list).filter((w) => w.startsWith(prefix));
}

/** A comma-separated list of a FlagSet's names: completes the last element, keeps the ones before. */
export function flagList(set: FlagSet): Completer {
  return (_ctx, prefix) => {
    const cut = Math.max(prefix.lastIndexOf(","), prefix.lastIndexOf("|"));
    const head = prefix.slice(0, cut + 1);
    const last = prefix.slice(cut + 1);
    const used = new Set(head.split(/[,|]/));
    return set.names.filter((n) => n.startsWith(last) && !used.has(n)).map((n) => head + n);
  };
}

/** Object names followed by `:` (addresses like `gmem0:0x1000`). */
export function addresses(...kinds: Kind[]): Completer {
  return (ctx, prefix) => kinds.flatMap((k) => ctx.names(k)).map((n) => `${n}:`).filter((n) => n.startsWith(prefix));
}
