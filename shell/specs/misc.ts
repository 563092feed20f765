/**
 * The misc commands' table entries (help, history, source, echo, reset, exit, debug …); their
 * behaviour (commands/misc.ts) loads on first use.
 * @module
 */

import { paths, words } from "../commands/complete_helpers.ts";
import type { Command } from "../commands/types.ts";

const load = () => import("../commands/misc.ts").then((m) => m.miscImpl);

/** The misc commands; `table` gives the whole command table (for help and completion). */
export function miscCommands(table: () => Command[]): Command[] {
  const groups = () => [...new Set(table().filter((c) => !c.hidden).map((c) => c.name.split(" ")[0]))];
  return [
    {
      name: "help",
      summary: "usage and an example for every command, or for one command or group",
      usage: "help [command [sub-command]]",
      example: "help gmem create",
      args: [{ name: "command", optional: true, rest: true, complete: words(groups) }],
      load,
    },
    {
      name: "history",
      summary: "the commands typed so far (kept in ~/.kvmsh_history, or $KVMSH_HISTORY)",
      usage: "history [n]",
      example: "history 20",
      args: [{ name: "n", optional: true }],
      load,
    },
    {
      name: "source",
      summary: "runs the commands of a file (stops at the first failure)",
      usage: "source <file>",
      example: "source walk.kvmsh",
      args: [{ name: "file", complete: paths() }],
      load,
    },
    {
      name: "echo",
      summary: "prints its arguments (markers in scripts)",
      usage: "echo [text…]",
      example: "echo step 2",
      args: [{ name: "text", optional: true, rest: true }],
      load,
    },
    {
      name: "reset",
      summary: "closes every VM and everything under it (fds, mappings); /dev/kvm stays open",
      usage: "reset",
      example: "reset",
      load,
    },
    {
      name: "exit",
      summary: "leaves the shell, closing every fd and mapping (Ctrl-D does the same)",
      usage: "exit [code]",
      example: "exit",
      args: [{ name: "code", optional: true }],
      load,
    },
    {
      name: "debug pid",
      summary: "the shell's pid (tests read /proc/<pid>/fd)",
      usage: "debug pid",
      example: "debug pid",
      hidden: true,
      load,
    },
    {
      name: "debug leak-fd",
      summary: "opens /dev/null and never closes it: the fd-leak check's own test (needs KVMSH_TEST_HOOKS=1)",
      usage: "debug leak-fd",
      example: "debug leak-fd",
      hidden: true,
      load,
    },
  ];
}
