/**
 * Words → a command and its Args, checked against the command's declared flags and arguments.
 * Every mistake is a UsageError; nothing is sent.
 * @module
 */

import { lookup } from "./table.ts";
import type { Args, Command } from "./commands/types.ts";
import { UsageError } from "./usage_error.ts";

/** Parses one command's words. */
export function parseCommand(words: string[], globalJson = false): { cmd: Command; args: Args } {
  const { cmd, used, suffix } = lookup(words);
  const flagSpecs = new Map((cmd.flags ?? []).map((f) => [f.name, f]));
  const pos: string[] = [];
  const flags: Record<string, string | true> = {};
  let json = globalJson;
  const rest = words.slice(used);
  for (let i = 0; i < rest.length; i++) {
    const w = rest[i];
    if (w === "--") {
      pos.push(...rest.slice(i + 1));
      break;
    }
    if (!w.startsWith("--") || w.length === 2) {
      pos.push(w);
      continue;
    }
    const eq = w.indexOf("=");
    const name = w.slice(2, eq < 0 ? undefined : eq);
    if (name === "json" && eq < 0) {
      json = true;
      continue;
    }
    const spec = flagSpecs.get(name);
    if (!spec) {
      const known = [...flagSpecs.keys()].map((k) => `--${k}`);
      throw new UsageError(
        `unknown flag '--${name}' for '${cmd.name}' (${
          known.length ? `known: ${known.join(", ")}, --json` : "only --json"
        })`,
      );
    }
    let value: string;
    if (!spec.value) {
      if (eq >= 0) throw new UsageError(`--${name} takes no value`);
      flags[name] = true;
      continue;
    } else if (eq >= 0) value = w.slice(eq + 1);
    else {
      if (i + 1 >= rest.length) throw new UsageError(`missing value for --${name} (usage: ${cmd.usage})`);
      value = rest[++i];
    }
    const before = flags[name];
    if (before !== undefined && !spec.repeat) {
      throw new UsageError(`--${name} given twice ('${before}', then '${value}'): give it once`);
    }
    flags[name] = spec.repeat && typeof before === "string" ? `${before},${value}` : value;
  }
  // The arguments first: `slot set` alone is missing its <id>, then its --gpa.
  const specs = cmd.args ?? [];
  const required = specs.filter((a) => !a.optional).length;
  if (pos.length < required) {
    throw new UsageError(`missing <${specs[pos.length].name}> (usage: ${cmd.usage})`);
  }
  for (const f of cmd.flags ?? []) {
    if (f.required && flags[f.name] === undefined) throw new UsageError(`missing --${f.name} (usage: ${cmd.usage})`);
  }
  if (!specs.some((a) => a.rest) && pos.length > specs.length) {
    throw new UsageError(`too many arguments for '${cmd.name}': '${pos[specs.length]}' (usage: ${cmd.usage})`);
  }
  return { cmd, args: { command: cmd.name, pos, flags, json, suffix, words } };
}
