/**
 * `record start <file.ts>` / `record stop`: the session as a replayable Deno script.
 * @module
 */

import { Recorder } from "../recorder.ts";
import { UsageError } from "../usage_error.ts";
import { CommandFailed, osReason } from "../failure.ts";
import type { Command } from "./types.ts";

/** Recorder commands. */
export const recordCommands: Command[] = [
  {
    name: "record start",
    summary: "records every following command as the equivalent mod.ts call into a replayable .ts file",
    usage: "record start <file.ts> [--force]",
    example: "record start repro.ts",
    args: [{ name: "file.ts" }],
    flags: [{ name: "force", help: "overwrite the file if it exists (without it, an existing file is refused)" }],
    run(ctx, a) {
      if (ctx.recorder?.active) throw new UsageError(`already recording to ${ctx.recorder.path} (record stop first)`);
      const path = a.pos[0];
      if (!/\.(ts|mts|js)$/.test(path)) throw new UsageError(`record start: '${path}' should end in .ts`);
      try {
        ctx.recorder = new Recorder(path, ctx.journal, a.flags.force === true);
      } catch (e) {
        if (e instanceof Deno.errors.AlreadyExists) {
          throw new UsageError(`record start: '${path}' exists; give --force to overwrite it`);
        }
        throw new CommandFailed(`record start: cannot create '${path}': ${osReason(e)}`);
      }
      return { lines: [`recording to ${path} (replay with ./deno run -A ${path})`], data: { recording: path } };
    },
  },
  {
    name: "record stop",
    summary: "finishes the recording",
    usage: "record stop",
    example: "record stop",
    run(ctx) {
      const r = ctx.recorder;
      if (!r?.active) throw new UsageError("not recording (record start <file.ts>)");
      r.stop();
      ctx.recorder = undefined;
      return { lines: [`recorded ${r.count} commands to ${r.path}`], data: { file: r.path, commands: r.count } };
    },
  },
];
