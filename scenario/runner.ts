/**
 * Runs scenarios: requirements, body (under a deadline, stoppable by Ctrl-C), cleanup that always
 * runs, then the kernel log read from the scenario's start: every record is attached, and a splat
 * the kernel printed (WARN, BUG, Oops, lockdep, sanitizers, stalls …) fails the scenario unless it
 * said it expects one.
 * @module
 */

import { describeError, kvmUnavailable, ScenarioContext } from "./context.ts";
import { checkRequirements } from "./requires.ts";
import { registry, type ScenarioEntry } from "./registry.ts";
import { collectCaps, stopCollectingCaps } from "./caps_tracker.ts";
import { type KernelLogSource, type KmsgRecord, splatKind } from "../kvm/kmsg.ts";
import { combine, type FileReport, type ResultLine, type ScenarioReport } from "./result.ts";
import { ExpectationFailed, ScenarioStopped, SkipSignal } from "./signals.ts";
import { nowMs, setScenarioDeadline } from "../kvm/run_loop.ts";
import type { InterruptWatch } from "./interrupt.ts";

/** The name of the line that vouches for the kernel log. */
export const KERNEL_LOG_CLAIM = "kernel log has no WARN/BUG/Oops/lockdep splat";

/** Checks the records against the scenario's expected patterns and records the verdict lines. */
export function judgeKernelLog(
  t: ScenarioContext,
  records: readonly KmsgRecord[],
  unavailable?: string,
  skipped = false,
): void {
  // Only the kernel's own records (facility 0): text a process wrote to /dev/kmsg is user facility.
  const splats = records.filter((r) => r.facility === 0 && splatKind(r.text) !== undefined);
  const unexpected = splats.filter((r) => !t.expectedLog.some((x) => x.re.test(r.text)));
  // A scenario that skipped everything it claimed makes no claim about the log either.
  const onlySkips = skipped || (t.lines.length > 0 && t.lines.every((l) => l.status === "skip"));
  for (const x of onlySkips ? [] : t.expectedLog) {
    const hit = records.find((r) => x.re.test(r.text));
    if (unavailable && !hit) t.record(x.name, "skip", unavailable);
    else t.record(x.name, hit ? "pass" : "fail", hit ? hit.text : "no such kernel log record during the scenario");
  }
  if (unexpected.length) {
    const first = unexpected[0];
    t.record(
      KERNEL_LOG_CLAIM,
      "fail",
      `${splatKind(first.text)}: ${first.text}${unexpected.length > 1 ? ` (+${unexpected.length - 1} more)` : ""}`,
    );
  } else if (!onlySkips) {
    if (unavailable) t.record(KERNEL_LOG_CLAIM, "skip", unavailable);
    else t.record(KERNEL_LOG_CLAIM, "pass", `${records.length} record(s)`);
  }
}

/** The deadline a scenario gets when neither it nor the runner names one. */
export const DEFAULT_SCENARIO_TIMEOUT_MS = 60_000;

/** After the body stopped, cleanup gets this long (its own guest runs are stopped after it). */
export const CLEANUP_GRACE_MS = 10_000;

/** Hooks to stream results as they come. */
export interface RunHooks {
  /** The file's scenarios were registered (its plan is known). */
  onPlan?(file: string, count: number): void;
  /** A scenario starts. */
  onScenarioStart?(file: string, index: number, name: string): void;
  /** A diagnostic of the running scenario. */
  onNote?(text: string): void;
  /** A result line of the running scenario (`n` counts from 1). */
  onLine?(line: ResultLine, n: number): void;
  /** A scenario finished. */
  onScenario?(file: string, index: number, report: ScenarioReport): void;
}

/** How scenarios run: kernel log, hooks, deadline, Ctrl-C. */
export interface ScenarioRunOptions {
  log: KernelLogSource;
  hooks?: RunHooks;
  /** Every scenario's deadline unless it names its own (default {@link DEFAULT_SCENARIO_TIMEOUT_MS}). */
  timeoutMs?: number;
  /** Ctrl-C: when set and signalled, the running scenario stops and no further one starts. */
  interrupt?: InterruptWatch;
}

function sleep(ms: number): { promise: Promise<"deadline">; cancel(): void } {
  let id: ReturnType<typeof setTimeout> | undefined;
  const promise = new Promise<"deadline">((r) => (id = setTimeout(() => r("deadline"), Math.max(0, ms))));
  return { promise, cancel: () => clearTimeout(id) };
}

/**
 * Runs one scenario with `opts.log` as the kernel log. The body runs under a deadline (the
 * scenario's `timeoutMs`, else the runner's): guest runs still going then (whatever their own
 * timeout) are stopped by the kick when it passes (setScenarioDeadline), and a body still waiting
 * on a promise is abandoned.
 * The step it was in is reported `deadline exceeded …` (or interrupted, for Ctrl-C); cleanup runs.
 */
export async function runScenario(
  entry: ScenarioEntry,
  logOrOpts: KernelLogSource | ScenarioRunOptions,
): Promise<ScenarioReport> {
  const opts: ScenarioRunOptions = "drain" in logOrOpts ? { log: logOrOpts } : logOrOpts;
  const { log, hooks = {}, interrupt } = opts;
  const reg = registry();
  const budgetMs = entry.options.timeoutMs ?? opts.timeoutMs ?? DEFAULT_SCENARIO_TIMEOUT_MS;
  const t0 = performance.now();
  const deadline = nowMs() + budgetMs;
  const t = new ScenarioContext(entry.name, {
    hooks: { note: (x) => hooks.onNote?.(x), line: (l, n) => hooks.onLine?.(l, n) },
    deadline,
    budgetMs,
    interrupted: interrupt ? () => interrupt.count() > 0 : undefined,
  });
  const outer = reg.current;
  reg.current = t;
  const caps = collectCaps();
  log.start();
  setScenarioDeadline(deadline);
  let skipped: string | undefined;
  const onError = (e: unknown) => {
    const noKvm = kvmUnavailable(e);
    if (e instanceof SkipSignal || noKvm) {
      const reason = e instanceof SkipSignal ? e.reason : noKvm!;
      if (t.lines.length === 0) skipped = reason;
      else t.record("rest of the scenario", "skip", reason);
    } else if (!(e instanceof ExpectationFailed) && !(e instanceof ScenarioStopped)) {
      t.record("scenario body", "fail", `uncaught ${describeError(e)}`);
    }
  };
  const body = reg.owner.run(t, async () => {
    if (entry.options.requires?.length) checkRequirements(t, entry.options.requires);
    await entry.fn(t);
  });
  body.catch(() => {}); // an abandoned body may reject later
  const timer = sleep(budgetMs);
  try {
    const outcome = await Promise.race([
      body.then(() => "done" as const, (e) => ({ error: e })),
      timer.promise,
      ...(interrupt ? [interrupt.signalled.then(() => "interrupt" as const)] : []),
    ]);
    if (outcome === "deadline" || outcome === "interrupt") t.abandon(outcome);
    else if (outcome !== "done") {
      try {
        onError(outcome.error);
      } catch (e) {
        // recording the error found the deadline passed: that line was recorded instead
        if (!(e instanceof ScenarioStopped)) throw e;
      }
    }
  } finally {
    timer.cancel();
    // Cleanup may run guests too: they get a grace period of their own.
    setScenarioDeadline(nowMs() + CLEANUP_GRACE_MS);
    try {
      await t.runCleanup();
    } finally {
      setScenarioDeadline(undefined);
      stopCollectingCaps();
      reg.current = outer;
    }
  }
  const kmsg = log.drain();
  judgeKernelLog(t, kmsg, log.unavailable, skipped !== undefined);
  t.finish();
  const durationMs = performance.now() - t0;
  if (skipped !== undefined && t.lines.every((l) => l.status === "skip")) {
    return { name: entry.name, status: "skip", reason: skipped, lines: t.lines, kmsg, caps, durationMs };
  }
  const status = combine(t.lines.map((l) => l.status));
  const failed = t.lines.filter((l) => l.status === "fail").length;
  return {
    name: entry.name,
    status,
    reason: status === "interrupted" ? "interrupted (SIGINT)" : failed ? `${failed} failed` : undefined,
    lines: t.lines,
    kmsg,
    caps,
    durationMs,
  };
}

/** Why scenarios that did not run were left out (Ctrl-C). */
export const NOT_RUN_INTERRUPTED = "not run: the run was interrupted (SIGINT)";

/** Runs registered entries as the file `file`. After Ctrl-C the remaining ones are skipped, not run. */
export async function runEntries(
  file: string,
  entries: readonly ScenarioEntry[],
  logOrOpts: KernelLogSource | ScenarioRunOptions,
  hooks: RunHooks = {},
): Promise<FileReport> {
  const opts: ScenarioRunOptions = "drain" in logOrOpts ? { log: logOrOpts, hooks } : logOrOpts;
  const h = opts.hooks ?? {};
  h.onPlan?.(file, entries.length);
  const scenarios: ScenarioReport[] = [];
  for (const [i, e] of entries.entries()) {
    let r: ScenarioReport;
    if (opts.interrupt && opts.interrupt.count() > 0) {
      r = { name: e.name, status: "skip", reason: NOT_RUN_INTERRUPTED, lines: [], kmsg: [], caps: [], durationMs: 0 };
    } else {
      h.onScenarioStart?.(file, i, e.name);
      r = await runScenario(e, opts);
    }
    scenarios.push(r);
    h.onScenario?.(file, i, r);
  }
  const status = combine(scenarios.map((s) => s.status));
  const failed = scenarios.filter((s) => s.status === "fail").length;
  return {
    file,
    status,
    reason: status === "interrupted"
      ? "interrupted (SIGINT)"
      : failed
      ? `${failed} scenario(s) failed`
      : status === "skip"
      ? scenarios.find((s) => s.reason)?.reason
      : undefined,
    scenarios,
  };
}

/** How often each scenario file URL was imported by {@link runFile} in this process. */
const imported = new Map<string, number>();

/**
 * Why a scenario file did not load. Deno reports a missing module or a syntax error as a TypeError
 * whose message says what happened ("Module not found …", "SyntaxError: …"): that message alone.
 * Anything the file's own top level threw keeps its class (`RangeError: …`). Without the colour
 * codes Deno puts in its `at file:…` line even when the output is not a terminal; the lines of a
 * multi-line message (a syntax error's code frame) stay, for the `# error:` lines and stderr (the
 * KTAP plan line takes the first).
 */
function loadError(e: unknown): string {
  const text = e instanceof TypeError && /^(Module not found|SyntaxError: )/.test(e.message)
    ? e.message
    : describeError(e);
  // deno-lint-ignore no-control-regex
  return text.replace(/\x1b\[[0-9;]*[A-Za-z]/g, "");
}

/**
 * Imports a scenario file (registering its scenarios) and runs them. A file that fails to load or
 * registers nothing is broken: the user's error (exit 2), not a verdict on the kernel.
 */
export async function runFile(
  path: string,
  logOrOpts: KernelLogSource | ScenarioRunOptions,
  hooks: RunHooks = {},
): Promise<FileReport> {
  const opts: ScenarioRunOptions = "drain" in logOrOpts ? { log: logOrOpts, hooks } : logOrOpts;
  const reg = registry();
  reg.entries = [];
  reg.runnerActive = true;
  try {
    // node:url loads here, not at start-up (any node: module costs ~10 ms of every kvmsh start).
    const url = /^[a-z]+:/.test(path) ? path : (await import("node:url")).pathToFileURL(pathResolve(path)).href;
    // A file this process imported already (given twice, or imported by an earlier file) would
    // not run again: its module is cached. A query makes it a new module with the same source.
    const n = (imported.get(url) ?? 0) + 1;
    imported.set(url, n);
    await import(n === 1 ? url : `${url}${url.includes("?") ? "&" : "?"}kvmsh-run=${n}`);
  } catch (e) {
    opts.hooks?.onPlan?.(path, 0);
    return { file: path, status: "fail", reason: `cannot load: ${loadError(e)}`, scenarios: [], broken: true };
  }
  const entries = reg.entries.splice(0);
  if (entries.length === 0) {
    opts.hooks?.onPlan?.(path, 0);
    return { file: path, status: "fail", reason: "no scenario() registered", scenarios: [], broken: true };
  }
  return runEntries(path, entries, opts);
}

function pathResolve(p: string): string {
  return p.startsWith("/") ? p : `${Deno.cwd()}/${p}`;
}
