/**
 * The mem commands' table entries; their behaviour (commands/mem.ts) loads on first use.
 * @module
 */

import { addresses } from "../commands/complete_helpers.ts";
import type { Command } from "../commands/types.ts";

const load = () => import("../commands/mem.ts").then((m) => m.memImpl);

const ADDR = { name: "gpa|gmem:off", complete: addresses("gmem", "map") };

/** mem commands. */
export const memCommands: Command[] = [
  {
    name: "x",
    summary: "dumps memory (fault-safe): x/<count><unit b|h|w|g><format x|d|u|c>, default x/16xb",
    usage: "x/<n><unit><fmt> <gpa | gmemN:offset | mapN:offset>",
    example: "x/16xb gmem0:0",
    args: [ADDR],
    load,
  },
  {
    name: "write",
    summary: "writes bytes (fault-safe) by GPA or gmem/mapping offset; fill:V[:len] fills len bytes (default 4K)",
    usage: "write <gpa | gmemN:offset | mapN:offset> <bytes…|hex:aabb|str:text|fill:0xaa[:len]>",
    example: "write gmem0:0 fill:0xaa:4K",
    args: [ADDR, { name: "bytes", rest: true }],
    load,
  },
  {
    name: "touch",
    summary:
      "a real load (or --write store) of a gmem byte in a child process: shows SIGBUS where the fault-safe path says EFAULT",
    usage: "touch <gmemN:offset> [--write] [--value V]",
    example: "touch gmem1:0",
    args: [{ name: "gmem:off", complete: addresses("gmem") }],
    flags: [{ name: "write", help: "store instead of load" }, { name: "value", value: "V", help: "byte to store" }],
    load,
  },
];
