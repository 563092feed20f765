/**
 * Runs scenarios: requirements, body, cleanup that always runs, then the kernel log read from the
 * scenario's start: every record is attached, and a splat (WARN, BUG, Oops, lockdep, GPF) fails
 * the scenario unless it said it expects one.
 * @module
 */

import { ScenarioContext } from "./context.ts";
import { describeError } from "./context.ts";
import { checkRequirements } from "./requires.ts";
import { registry, type ScenarioEntry } from "./registry.ts";
import { collectCaps, stopCollectingCaps } from "./caps_tracker.ts";
import { type KernelLogSource, type KmsgRecord, splatKind } from "../kvm/kmsg.ts";
import { combine, type FileReport, type ScenarioReport } from "./result.ts";
import { ExpectationFailed, SkipSignal } from "./signals.ts";

/** The name of the line that vouches for the kernel log. */
export const KERNEL_LOG_CLAIM = "kernel log has no WARN/BUG/Oops/lockdep splat";

/** Checks the records against the scenario's expected patterns and records the verdict lines. */
export function judgeKernelLog(
  t: ScenarioContext,
  records: readonly KmsgRecord[],
  unavailable?: string,
  skipped = false,
): void {
  const splats = records.filter((r) => splatKind(r.text) !== undefined);
  const unexpected = splats.filter((r) => !t.expectedLog.some((x) => x.re.test(r.text)));
  for (const x of t.expectedLog) {
    const hit = records.find((r) => x.re.test(r.text));
    t.record(x.name, hit ? "pass" : "fail", hit ? hit.text : "no such kernel log record during the scenario");
  }
  // A scenario that skipped everything it claimed makes no claim about the log either.
  const onlySkips = skipped || (t.lines.length > 0 && t.lines.every((l) => l.status === "skip"));
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

/** Runs one scenario with `log` as the kernel log. */
export async function runScenario(entry: ScenarioEntry, log: KernelLogSource): Promise<ScenarioReport> {
  const reg = registry();
  const t = new ScenarioContext(entry.name);
  const outer = reg.current;
  reg.current = t;
  const caps = collectCaps();
  log.start();
  const t0 = performance.now();
  let skipped: string | undefined;
  try {
    if (entry.options.requires?.length) checkRequirements(t, entry.options.requires);
    await entry.fn(t);
  } catch (e) {
    if (e instanceof SkipSignal) {
      if (t.lines.length === 0) skipped = e.reason;
      else t.record("rest of the scenario", "skip", e.reason);
    } else if (!(e instanceof ExpectationFailed)) {
      t.record("scenario body", "fail", `uncaught ${describeError(e)}`);
    }
  } finally {
    await t.runCleanup();
    stopCollectingCaps();
    reg.current = outer;
  }
  const kmsg = log.drain();
  judgeKernelLog(t, kmsg, log.unavailable, skipped !== undefined);
  const durationMs = performance.now() - t0;
  if (skipped !== undefined && t.lines.every((l) => l.status === "skip")) {
    return { name: entry.name, status: "skip", reason: skipped, lines: t.lines, kmsg, caps, durationMs };
  }
  const status = combine(t.lines.map((l) => l.status));
  const failed = t.lines.filter((l) => l.status === "fail").length;
  return {
    name: entry.name,
    status,
    reason: failed ? `${failed} failed` : undefined,
    lines: t.lines,
    kmsg,
    caps,
    durationMs,
  };
}

/** Hooks to stream results as they come. */
export interface RunHooks {
  /** The file's scenarios were registered (its plan is known). */
  onPlan?(file: string, count: number): void;
  /** A scenario finished. */
  onScenario?(file: string, index: number, report: ScenarioReport): void;
}

/** Runs registered entries as the file `file`. */
export async function runEntries(
  file: string,
  entries: readonly ScenarioEntry[],
  log: KernelLogSource,
  hooks: RunHooks = {},
): Promise<FileReport> {
  hooks.onPlan?.(file, entries.length);
  const scenarios: ScenarioReport[] = [];
  for (const [i, e] of entries.entries()) {
    const r = await runScenario(e, log);
    scenarios.push(r);
    hooks.onScenario?.(file, i, r);
  }
  const status = combine(scenarios.map((s) => s.status));
  const failed = scenarios.filter((s) => s.status === "fail").length;
  return { file, status, reason: failed ? `${failed} scenario(s) failed` : undefined, scenarios };
}

/** Imports a scenario file (registering its scenarios) and runs them. A file that fails to load is an error. */
export async function runFile(path: string, log: KernelLogSource, hooks: RunHooks = {}): Promise<FileReport> {
  const reg = registry();
  reg.entries = [];
  reg.runnerActive = true;
  try {
    // node:url loads here, not at start-up (any node: module costs ~10 ms of every kvmsh start).
    const url = /^[a-z]+:/.test(path) ? path : (await import("node:url")).pathToFileURL(pathResolve(path)).href;
    await import(url);
  } catch (e) {
    hooks.onPlan?.(path, 0);
    return { file: path, status: "fail", reason: `cannot load: ${describeError(e)}`, scenarios: [] };
  }
  const entries = reg.entries.splice(0);
  if (entries.length === 0) {
    hooks.onPlan?.(path, 0);
    return { file: path, status: "fail", reason: "no scenario() registered", scenarios: [] };
  }
  return runEntries(path, entries, log, hooks);
}

function pathResolve(p: string): string {
  return p.startsWith("/") ? p : `${Deno.cwd()}/${p}`;
}
