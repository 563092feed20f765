/**
 * `step [n]` and `continue`: go on from wherever the vCPU stopped (a `run` that hit HLT, its
 * timeout, Ctrl-C, an exit code …). `step` is the API's stepVcpu (KVM_SET_GUEST_DEBUG
 * ENABLE|SINGLESTEP, run to the DEBUG exit, the guest ABI answering the exits on the way) and
 * shows the new RIP, the exits and the instruction bytes at RIP (codeAt: CS.base+IP in real mode,
 * KVM_TRANSLATE under paging, read fault-safely). `continue` is runVcpu with single-step off.
 * Both stop on Ctrl-C through the API's kick.
 * @module
 */

import {
  codeAt,
  type ExitInfo,
  formatExit,
  hex,
  runVcpu,
  stepVcpu,
  type Vcpu,
  type VcpuRunResult,
} from "../../core.ts";
import { big, int, str } from "../ts_literal.ts";
import { small } from "../values.ts";
import { UsageError } from "../usage_error.ts";
import { codeLine, consoleLines, guestOutput } from "./guest_view.ts";
import { parseTimeout, vcpuOf, vcpuRef } from "./vcpu_ref.ts";
import { stopStatus } from "./stop_status.ts";
import type { Args, CommandImpls, Outcome, Recorded } from "./types.ts";
import type { Session } from "../session.ts";

const DEFAULT_TIMEOUT_MS = 5000;
/** Step records kept for the output (the last ones); a long step run shows its first and last lines. */
const KEEP_STEPS = 1000;
/** Step lines printed in full; beyond, the first and last half of these. */
const SHOW_STEPS = 16;
/** Steps beyond this are refused (one KVM_RUN round trip each; Ctrl-C or --timeout stop long ones anyway). */
const MAX_STEPS = 100_000_000;

interface StepArgs {
  count: number;
  timeoutMs: number;
  vcpu?: string;
}

function stepArgs(a: Args): StepArgs {
  const count = a.pos[0] === undefined ? 1 : small(a.pos[0], "step count", MAX_STEPS);
  if (count < 1) throw new UsageError("step count must be at least 1");
  return {
    count,
    timeoutMs: parseTimeout(a.flags.timeout) ?? DEFAULT_TIMEOUT_MS,
    vcpu: a.flags.vcpu === undefined ? undefined : String(a.flags.vcpu),
  };
}

/** The API call's options: a long step run keeps the last KEEP_STEPS records only. */
function stepOptions(s: StepArgs): { count: number; timeoutMs: number; keepSteps?: number } {
  return { count: s.count, timeoutMs: s.timeoutMs, ...(s.count > KEEP_STEPS ? { keepSteps: KEEP_STEPS } : {}) };
}

/** What a stop line says: why, the exit code if any, the last exit decoded, the count and time. */
function stopLine(r: VcpuRunResult): string {
  return `stop: ${r.stop === "exit" ? r.exit.name : r.stop}${
    r.exitCode ? ` (exit code ${hex(r.exitCode.value)})` : ""
  }; last exit ${formatExit(r.exit)}; ${r.exits} exits in ${r.elapsedMs.toFixed(1)} ms`;
}

function exitsText(exits: ExitInfo[]): string {
  return exits.length ? ` after ${exits.map(formatExit).join(", ")}` : "";
}

/** Replay checks shared by step and continue: stop (unless a timeout/Ctrl-C ended it), last exit, console. */
function runChecks(res: string, o: Observed, claim: string): string[] {
  const timed = o.stop === "interrupt" || o.stop === "timeout";
  const checks = [`kvmsh.expectEqual(${res}.exit.name, ${str(o.exit)}, ${str(`${claim}: last exit`)});`];
  if (!timed) {
    checks.unshift(`kvmsh.expectEqual(${res}.stop, ${str(o.stop)}, ${str(`${claim}: stop`)});`);
    checks.push(`kvmsh.expectEqual(${res}.console, ${str(o.console)}, ${str(`${claim}: console`)});`);
    if (o.rips) {
      checks.push(
        `kvmsh.expectEqual(${res}.steps.map((s) => s.rip), [${o.rips.map(big).join(", ")}], ${
          str(`${claim}: RIP after each step`)
        });`,
      );
    }
  }
  return checks;
}

interface Observed {
  stop: string;
  exit: string;
  console: string;
  rips?: bigint[];
}

/** Warns (before sending) when the VM has no memslot: the guest has nothing to run from. */
function warnNoMemory(ctx: Session, cpu: Vcpu, vmName: string): void {
  if (cpu.vm.memslots.length === 0) {
    ctx.pendingWarnings.push(
      `warning: ${vmName} has no memslot, so the guest has nothing to run from (\`run <guest>\` loads one); sending KVM_RUN anyway`,
    );
  }
}

/** Clears single-step when a scenario or earlier command left it on: continue runs freely. */
function clearStep(cpu: Vcpu): void {
  if (cpu.singleStep) cpu.setGuestDebug({});
}

/** The debug_step commands' behaviour (their table entries: specs/debug_step.ts). */
export const debugImpl: CommandImpls = {
  "step": {
    run(ctx: Session, a: Args): Outcome {
      const s = stepArgs(a);
      const v = vcpuOf(ctx, s.vcpu);
      warnNoMemory(ctx, v.obj, v.vm);
      const view = guestOutput(a.json);
      const res = ctx.blocking(() => stepVcpu(v.obj, { ...stepOptions(s), ...view.callbacks }));
      ctx.usedVcpu(v.obj);
      const at = codeAt(v.obj);
      const first = res.stepped - res.steps.length + 1;
      const line = (i: number) => {
        const st = res.steps[i];
        return `${v.name}: step ${first + i}: rip ${hex(st.rip)} (pc ${hex(st.pc)})${exitsText(st.exits)}`;
      };
      const n = res.steps.length;
      const lines: string[] = [];
      if (res.stepped <= SHOW_STEPS) { for (let i = 0; i < n; i++) lines.push(line(i)); }
      else {
        // The first steps are kept only when nothing was dropped; the last SHOW_STEPS/2 always.
        const head = first === 1 ? SHOW_STEPS / 2 : 0;
        for (let i = 0; i < head; i++) lines.push(line(i));
        lines.push(`${v.name}: … ${res.stepped - head - SHOW_STEPS / 2} more steps …`);
        for (let i = n - SHOW_STEPS / 2; i < n; i++) lines.push(line(i));
      }
      if (res.stepped < s.count) {
        lines.push(
          `${v.name}: ${res.stepped} of ${s.count} steps done${
            res.trail.length ? `; then ${res.trail.map(formatExit).join(", ")}` : ""
          }`,
        );
      }
      lines.push(...consoleLines(view.consoleText(res.console)), stopLine(res), codeLine(at));
      return {
        lines,
        data: {
          vcpu: v.name,
          count: s.count,
          stepped: res.stepped,
          steps: res.steps,
          trail: res.trail,
          stop: res.stop,
          exit: res.exit,
          console: res.console,
          exitCode: res.exitCode,
          ucalls: res.ucalls,
          exits: res.exits,
          elapsedMs: res.elapsedMs,
          code: at,
        },
        observed: {
          stop: res.stop,
          exit: res.exit.name,
          console: res.console,
          rips: res.steps.map((x) => x.rip),
        } satisfies Observed,
        // Every step done (a DEBUG exit last), HLT or an exit code: the script goes on; else as `run`.
        ...stopStatus(ctx, "step", res, s.timeoutMs, ["HLT", "DEBUG"]),
      };
    },
    record(a: Args, ctx: Session): Recorded[] {
      const s = stepArgs(a);
      const o = stepOptions(s);
      const keep = o.keepSteps === undefined ? "" : `, keepSteps: ${int(o.keepSteps)}`;
      return [{
        expr: `kvmsh.stepVcpu(${vcpuRef(ctx, s.vcpu)}, { count: ${int(s.count)}, timeoutMs: ${
          int(s.timeoutMs)
        }${keep} })`,
        check: (res, out, claim) => runChecks(res, out.observed as Observed, claim),
      }];
    },
  },
  "continue": {
    run(ctx: Session, a: Args): Outcome {
      const timeoutMs = parseTimeout(a.flags.timeout) ?? DEFAULT_TIMEOUT_MS;
      const v = vcpuOf(ctx, a.flags.vcpu === undefined ? undefined : String(a.flags.vcpu));
      warnNoMemory(ctx, v.obj, v.vm);
      clearStep(v.obj);
      const view = guestOutput(a.json);
      const res = ctx.blocking(() => runVcpu(v.obj, { timeoutMs, ...view.callbacks }));
      ctx.usedVcpu(v.obj);
      const rip = v.obj.getReg("rip");
      // Stopped from outside (timeout, Ctrl-C): the instruction it was on, e.g. a vmcall it spins on.
      const outside = res.stop === "timeout" || res.stop === "deadline" || res.stop === "interrupt";
      const code = outside ? codeAt(v.obj) : undefined;
      return {
        lines: [
          ...consoleLines(view.consoleText(res.console)),
          stopLine(res),
          `${v.name}: rip ${hex(rip)}`,
          ...(code ? [codeLine(code)] : []),
        ],
        data: {
          vcpu: v.name,
          stop: res.stop,
          exit: res.exit,
          console: res.console,
          exitCode: res.exitCode,
          ucalls: res.ucalls,
          exits: res.exits,
          elapsedMs: res.elapsedMs,
          rip,
          ...(code ? { code } : {}),
        },
        observed: { stop: res.stop, exit: res.exit.name, console: res.console } satisfies Observed,
        ...stopStatus(ctx, "continue", res, timeoutMs),
      };
    },
    record(a: Args, ctx: Session): Recorded[] {
      const timeoutMs = parseTimeout(a.flags.timeout) ?? DEFAULT_TIMEOUT_MS;
      const name = a.flags.vcpu === undefined ? undefined : String(a.flags.vcpu);
      const ref = vcpuRef(ctx, name);
      const recs: Recorded[] = [];
      if (vcpuOf(ctx, name).obj.singleStep) recs.push({ expr: `${ref}.setGuestDebug({})` });
      recs.push({
        expr: `kvmsh.runVcpu(${ref}, { timeoutMs: ${int(timeoutMs)} })`,
        check: (res, out, claim) => runChecks(res, out.observed as Observed, claim),
      });
      return recs;
    },
  },
};
