/**
 * The command table: every command, one file per group under commands/. Help, completion,
 * parsing and recording all read it.
 * @module
 */

import { attrCommands } from "./commands/attr.ts";
import { capsCommands } from "./commands/caps.ts";
import { gmemCommands } from "./commands/gmem.ts";
import { memCommands } from "./commands/mem.ts";
import { miscCommands } from "./commands/misc.ts";
import { recordCommands } from "./commands/record.ts";
import { slotCommands } from "./commands/slot.ts";
import { vcpuCommands } from "./commands/vcpu.ts";
import { vmCommands } from "./commands/vm.ts";
import type { Command } from "./commands/types.ts";
import { UsageError } from "./usage_error.ts";

/** Every command. */
export const COMMANDS: Command[] = [
  ...capsCommands,
  ...vmCommands,
  ...gmemCommands,
  ...slotCommands,
  ...attrCommands,
  ...memCommands,
  ...vcpuCommands,
  ...recordCommands,
];
COMMANDS.push(...miscCommands(() => COMMANDS));

/** The first words of every command (for completion). */
export function commandWords(): string[] {
  return [...new Set(COMMANDS.filter((c) => !c.hidden).map((c) => c.name.split(" ")[0]))].sort();
}

/** The sub-commands of a group (`gmem` → create, list, …); empty for a plain command. */
export function subCommands(group: string): string[] {
  return COMMANDS.filter((c) => !c.hidden && c.name.startsWith(`${group} `)).map((c) => c.name.split(" ")[1]);
}

/** Finds the command named by the first words; returns it, how many words it used and an `x/` suffix. */
export function lookup(words: string[]): { cmd: Command; used: number; suffix?: string } {
  const w0 = words[0];
  const xm = /^x(?:\/(.*))?$/.exec(w0);
  if (xm) return { cmd: COMMANDS.find((c) => c.name === "x")!, used: 1, suffix: xm[1] };
  const exact = COMMANDS.find((c) => c.name === w0);
  if (exact) return { cmd: exact, used: 1 };
  const subs = COMMANDS.filter((c) => c.name.startsWith(`${w0} `));
  if (!subs.length) throw new UsageError(`unknown command '${w0}' (help lists the commands)`);
  const visible = subs.filter((c) => !c.hidden).map((c) => c.name.split(" ")[1]);
  if (words.length < 2) throw new UsageError(`${w0} needs a sub-command: ${visible.join(", ")}`);
  const cmd = subs.find((c) => c.name === `${w0} ${words[1]}`);
  if (!cmd) throw new UsageError(`unknown sub-command '${w0} ${words[1]}' (${w0} ${visible.join("|")})`);
  return { cmd, used: 2 };
}
