/**
 * Tab completion from the command table: commands, sub-commands, flag names, flag values
 * (FlagSet lists like `mmap,<TAB>`), and object names.
 * @module
 */

import { lex } from "./lexer.ts";
import { COMMANDS, commandWords, subCommands } from "./table.ts";
import type { Session } from "./session.ts";

/** Candidates for the word being typed at the end of `line`, and that word (readline's completer contract). */
export function complete(ctx: Session, line: string): [string[], string] {
  const l = lex(line);
  const lexed = l.commands[l.commands.length - 1] ?? [];
  const words = lexed.map((w) => w.text);
  const partial = l.trailingSpace || words.length === 0 ? "" : words.pop()!;
  // What readline replaces: the word as typed, with its quotes and escapes (`my\ dir/`), not its
  // text (`my dir/`), which candidates are matched against.
  const typed = partial === "" && (l.trailingSpace || lexed.length === 0)
    ? ""
    : line.slice(lexed[lexed.length - 1].start);
  const sorted = (xs: string[]) => [...new Set(xs)].sort();
  try {
    if (words.length === 0) {
      return [sorted(commandWords().filter((w) => w.startsWith(partial))).map((w) => w + " "), typed];
    }
    const w0 = words[0];
    const subs = subCommands(w0);
    if (subs.length && words.length === 1) {
      return [sorted(subs.filter((s) => s.startsWith(partial))).map((s) => s + " "), typed];
    }
    // `help <group> <TAB>`: the group's sub-commands, then nothing (usage: help [command [sub-command]]).
    if (w0 === "help" && words.length >= 2) {
      const more = words.length === 2 ? subCommands(words[1]) : [];
      return [sorted(more.filter((s) => s.startsWith(partial))).map((s) => s + " "), typed];
    }
    const name = /^x(\/|$)/.test(w0) ? "x" : subs.length ? `${w0} ${words[1]}` : w0;
    const cmd = COMMANDS.find((c) => c.name === name);
    if (!cmd) return [[], typed];
    const used = name === w0 || name === "x" ? 1 : 2;
    const rest = words.slice(used);
    const prev = rest[rest.length - 1];
    const prevFlag = prev?.startsWith("--") && !prev.includes("=")
      ? cmd.flags?.find((f) => f.name === prev.slice(2))
      : undefined;
    if (prevFlag?.value) return [sorted(prevFlag.complete?.(ctx, partial) ?? []), typed];
    if (partial.startsWith("--")) {
      const eq = partial.indexOf("=");
      if (eq > 0) {
        const f = cmd.flags?.find((x) => x.name === partial.slice(2, eq));
        const v = partial.slice(eq + 1);
        return [sorted(f?.complete?.(ctx, v) ?? []).map((c) => partial.slice(0, eq + 1) + c), typed];
      }
      const given = new Set(rest.filter((w) => w.startsWith("--")).map((w) => w.slice(2)));
      const again = new Set((cmd.flags ?? []).filter((f) => f.repeat).map((f) => f.name));
      const names = [...(cmd.flags ?? []).map((f) => f.name), "json"].filter((n) => !given.has(n) || again.has(n));
      return [sorted(names.map((n) => `--${n}`).filter((n) => n.startsWith(partial))).map((n) => n + " "), typed];
    }
    // Count positionals so far (flag values are not positionals).
    let n = 0;
    for (let i = 0; i < rest.length; i++) {
      const w = rest[i];
      if (w.startsWith("--")) {
        const f = cmd.flags?.find((x) => x.name === w.slice(2));
        if (f?.value && !w.includes("=")) i++;
        continue;
      }
      n++;
    }
    const specs = cmd.args ?? [];
    const spec = specs[n] ?? (specs[specs.length - 1]?.rest ? specs[specs.length - 1] : undefined);
    // A whole object name or word ends the argument; `gmem0:`, lists and directories (`dir/`) go on.
    const done = (c: string) => (/[:,|=/]$/.test(c) ? c : c + " ");
    return [sorted(spec?.complete?.(ctx, partial) ?? []).map(done), typed];
  } catch {
    return [[], typed];
  }
}
