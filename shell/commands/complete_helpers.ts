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

/**
 * File paths: the entries of the directory typed so far that start with the rest (a directory
 * ends in `/`, so Tab goes on into it; dot files only once a `.` is typed). Characters the lexer
 * reads specially (space, quotes, `;`, `#`, `\`) are escaped with `\`.
 */
export function paths(): Completer {
  return (_ctx, prefix) => {
    const dir = prefix.slice(0, prefix.lastIndexOf("/") + 1);
    const base = prefix.slice(dir.length);
    const found: string[] = [];
    try {
      for (const e of Deno.readDirSync(dir || ".")) {
        if (!e.name.startsWith(base) || (e.name.startsWith(".") && !base.startsWith("."))) continue;
        let isDir = e.isDirectory;
        if (e.isSymlink) {
          try {
            isDir = Deno.statSync(dir + e.name).isDirectory;
          } catch {
            // a dangling link: offered as a file
          }
        }
        found.push((dir + e.name).replace(/[\s'";#\\]/g, "\\$&") + (isDir ? "/" : ""));
      }
    } catch {
      return [];
    }
    return found;
  };
}
