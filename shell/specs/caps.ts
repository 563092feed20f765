/**
 * The caps command's table entry; its behaviour (commands/caps.ts) loads on first use.
 * @module
 */

import { CAP } from "../../core.ts";
import { words } from "../commands/complete_helpers.ts";
import type { Command } from "../commands/types.ts";

const load = () => import("../commands/caps.ts").then((m) => m.capsImpl);

/** The caps command. */
export const capsCommands: Command[] = [{
  name: "caps",
  summary: "host report: kernel, vendor module, API version, capabilities (system fd and a VM)",
  usage: "caps [--all] [cap…]",
  example: "caps GUEST_MEMFD_FLAGS MEMORY_ATTRIBUTES",
  args: [{ name: "cap", optional: true, rest: true, complete: words(() => Object.keys(CAP)) }],
  flags: [{ name: "all", help: "list every cap, also those the host answers 0" }],
  load,
}];
