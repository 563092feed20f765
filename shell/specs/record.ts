/**
 * The record commands' table entries; their behaviour (commands/record.ts) loads on first use.
 * @module
 */

import { paths } from "../commands/complete_helpers.ts";
import type { Command } from "../commands/types.ts";

const load = () => import("../commands/record.ts").then((m) => m.recordImpl);

/** record commands. */
export const recordCommands: Command[] = [
  {
    name: "record start",
    summary: "records every following command as the equivalent mod.ts call into a replayable .ts file",
    usage: "record start <file.ts> [--force]",
    example: "record start repro.ts",
    args: [{ name: "file.ts", complete: paths() }],
    flags: [{ name: "force", help: "overwrite the file if it exists (without it, an existing file is refused)" }],
    load,
  },
  {
    name: "record stop",
    summary: "finishes the recording",
    usage: "record stop",
    example: "record stop",
    load,
  },
];
