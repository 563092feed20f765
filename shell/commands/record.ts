/**
 * `record start <file.ts>` / `record stop`: the session as a replayable Deno script.
 * @module
 */

import { Recorder } from "../recorder.ts";
import { UsageError } from "../usage_error.ts";
import { CommandFailed, osReason } from "../failure.ts";
import type { CommandImpls } from "./types.ts";

/** The record commands' behaviour (their table entries: specs/record.ts). */
export const recordImpl: CommandImpls = {
  "record start": {
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
      // The recording is a scenario: the runner replays it with KTAP results.
      return { lines: [`recording to ${path} (replay with ./kvmsh scenario ${path})`], data: { recording: path } };
    },
  },
  "record stop": {
    run(ctx) {
      const r = ctx.recorder;
      if (!r?.active) throw new UsageError("not recording (record start <file.ts>)");
      r.stop();
      ctx.recorder = undefined;
      const n = `${r.count} command${r.count === 1 ? "" : "s"}`;
      return { lines: [`recorded ${n} to ${r.path}`], data: { file: r.path, commands: r.count } };
    },
  },
};
