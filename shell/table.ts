/**
 * The command table: every command's entry (name, usage, arguments, flags, completion), one
 * file per group under specs/. Help, completion and parsing read it; what a command does
 * (commands/<group>.ts) is imported on its first use (implOf), so a short `kvmsh -c …` loads
 * only the groups it uses — except vm and vcpu (`vm create`, `run`), loaded with the table.
 * @module
 */

import { attrCommands } from "./specs/attr.ts";
import { capsCommands } from "./specs/caps.ts";
import { gmemCommands } from "./specs/gmem.ts";
import { memCommands } from "./specs/mem.ts";
import { miscCommands } from "./specs/misc.ts";
import { recordCommands } from "./specs/record.ts";
import { slotCommands } from "./specs/slot.ts";
import { vcpuCommands } from "./specs/vcpu.ts";
import { vmCommands } from "./specs/vm.ts";
import { debugCommands } from "./specs/debug_step.ts";
import type { Command, CommandImpl } from "./commands/types.ts";
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
  ...debugCommands,
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

/** A command's implementation: its group's module is imported on first use (then cached by the module loader). */
export async function implOf(cmd: Command): Promise<CommandImpl> {
  const impl = (await cmd.load())[cmd.name];
  if (!impl) throw new Error(`internal: no implementation for '${cmd.name}'`);
  return impl;
}
