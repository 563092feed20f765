/**
 * How a guest's stop becomes a command's result, for `run`, `continue` and `step` alike: a stop
 * the script can go on from (HLT, an exit code, ucall done; for `step`, every step done) or a
 * failure with exit status 1 (timeout, deadline, assertion, an unhandled port, an exit kvmsh does
 * not resume from), 130 for Ctrl-C outside the prompt. What `help: exit status` documents.
 * @module
 */

import { formatExit, type VcpuRunResult } from "../../core.ts";
import { CommandFailed } from "../failure.ts";
import type { Session } from "../session.ts";

/** What decides a stop: the run result's stop, last exit and ucalls. */
type Stopped = Pick<VcpuRunResult, "stop" | "exit" | "ucalls"> & Partial<Pick<VcpuRunResult, "exitCode">>;

/** True when the script goes on after this stop. `done` lists last exits that finish it (`DEBUG` for step). */
function stopOk(res: Stopped, done: readonly string[]): boolean {
  if (res.stop === "exit") return done.includes(res.exit.name);
  return res.stop === "exit-code" || res.stop === "done" || res.stop === "ucall";
}

/**
 * The failure a stop is for command `cmd` (`run`, `continue`, `step`), or undefined when the
 * script goes on. Ctrl-C at the prompt is no failure; outside it the script ends with 130.
 */
export function stopFailure(
  ctx: Session,
  cmd: string,
  res: Stopped,
  timeoutMs: number,
  done: readonly string[] = ["HLT"],
): CommandFailed | undefined {
  if (stopOk(res, done)) return undefined;
  switch (res.stop) {
    case "interrupt":
      if (ctx.interactive) return undefined;
      ctx.exitCode = 130;
      return new CommandFailed("interrupted (SIGINT): the guest was stopped and the script ends (status 130)", 130);
    case "timeout":
      return new CommandFailed(`${cmd}: the guest did not finish within its --timeout (${timeoutMs} ms)`);
    case "deadline":
      return new CommandFailed(`${cmd}: the guest did not finish before the deadline`);
    case "assert": {
      const u = res.ucalls.findLast((x) => x.cmd === "assert");
      return new CommandFailed(`${cmd}: the guest asserted${u?.message ? `: ${u.message}` : ""}`);
    }
    case "unhandled-io":
      return new CommandFailed(`${cmd}: the guest used an I/O port kvmsh does not handle (${formatExit(res.exit)})`);
    case "exit":
      return new CommandFailed(`${cmd}: the guest stopped on ${res.exit.name}, an exit kvmsh does not resume from`);
    default:
      return new CommandFailed(`${cmd}: the guest stopped (${res.stop})`);
  }
}

/** The outcome fields of a stop: the failure, or the guest's exit code (& 0xff) as the run status. */
export function stopStatus(
  ctx: Session,
  cmd: string,
  res: Stopped,
  timeoutMs: number,
  done?: readonly string[],
): { fail: CommandFailed } | { runStatus: number } {
  const fail = stopFailure(ctx, cmd, res, timeoutMs, done);
  return fail ? { fail } : { runStatus: res.exitCode ? res.exitCode.value & 0xff : 0 };
}
