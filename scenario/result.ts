/**
 * What a scenario run produces: one result per step or expectation, the scenario's verdict,
 * the kernel log records and caps it read, and the kselftest exit code of a whole run.
 * @module
 */

import type { KmsgRecord } from "../kvm/kmsg.ts";

/**
 * A result's outcome, as kselftest counts them, plus `interrupted`: the user stopped the run (Ctrl-C)
 * while it ran — neither a pass nor a failure of the kernel.
 */
export type Status = "pass" | "fail" | "skip" | "xfail" | "xpass" | "interrupted";

/** One KTAP result line. */
export interface ResultLine {
  /** The claim tested. */
  name: string;
  status: Status;
  /** Why it failed or skipped; for XFAIL, the divergence and the kernel's actual answer. */
  reason?: string;
  /** Diagnostic lines printed before the result (step headers, details). */
  diag: string[];
}

/** A capability a scenario read through KVM_CHECK_EXTENSION, and the answer. */
export interface CapRead {
  cap: string;
  scope: "system" | "vm";
  /** The value, or the errno name when the ioctl failed. */
  value: number | string;
}

/** The outcome of one scenario. */
export interface ScenarioReport {
  name: string;
  status: Status;
  reason?: string;
  lines: ResultLine[];
  kmsg: KmsgRecord[];
  caps: CapRead[];
  durationMs: number;
}

/** The outcome of one scenario file. */
export interface FileReport {
  file: string;
  status: Status;
  reason?: string;
  scenarios: ScenarioReport[];
  /** The file could not be imported or registered no scenario: a user error, not a kernel verdict. */
  broken?: boolean;
}

/** Counts of a run, as kselftest's `# Totals:` line. */
export interface Totals {
  pass: number;
  fail: number;
  xfail: number;
  xpass: number;
  skip: number;
  /** Scenario files that could not be loaded (syntax error, failed import, no scenario). */
  error: number;
  /** Results cut short by Ctrl-C. */
  interrupted: number;
}

/** kselftest exit codes. */
export const KSFT = Object.freeze({ PASS: 0, FAIL: 1, XFAIL: 2, XPASS: 3, SKIP: 4 });

/** The exit code `git bisect run` reads as "cannot test this commit". */
export const BISECT_SKIP = 125;

/** A broken scenario file or bad command line: the user's error, not a verdict on the kernel. */
export const USAGE_ERROR = 2;

/**
 * The same under `--bisect`: `git bisect run` reads every code from 1 to 127 but 125 as "bad" (2
 * too) and aborts on a code above 127, which is right for an error that every commit would repeat.
 */
export const BISECT_ABORT = 128;

/** The run was stopped by Ctrl-C (128 + SIGINT, as a shell reports it; `git bisect run` aborts on it). */
export const INTERRUPTED = 130;

/** Counts every leaf result (step/expectation line) of the files; a file that could not load is an error. */
export function totals(files: readonly FileReport[]): Totals {
  const t: Totals = { pass: 0, fail: 0, xfail: 0, xpass: 0, skip: 0, error: 0, interrupted: 0 };
  for (const f of files) {
    if (f.scenarios.length === 0) {
      if (f.broken) t.error++;
      else t[f.status]++;
      continue;
    }
    for (const s of f.scenarios) {
      if (s.lines.length === 0) t[s.status]++;
      for (const l of s.lines) t[l.status]++;
    }
  }
  return t;
}

/**
 * The exit code: 130 when Ctrl-C cut the run short, 2 when a scenario file could not be loaded (the
 * user's error, whatever else ran), else kselftest's: 1 when anything failed (an XPASS counts: the
 * marker is stale), 4 when nothing passed and something skipped, else 0. `bisect` maps skip to 125
 * and an unloadable file to 128, so `git bisect run` skips the commit or stops (130 stops it too)
 * rather than reading the user's error as "bad".
 */
export function exitCode(t: Totals, bisect = false): number {
  if (t.interrupted > 0) return INTERRUPTED;
  if (t.error > 0) return bisect ? BISECT_ABORT : USAGE_ERROR;
  if (t.fail + t.xpass > 0) return KSFT.FAIL;
  if (t.pass + t.xfail === 0) return bisect ? BISECT_SKIP : KSFT.SKIP;
  return KSFT.PASS;
}

/** The verdict of a group from its members: interrupted wins, then fail, then xpass; all skipped is skip. */
export function combine(statuses: readonly Status[]): Status {
  if (statuses.includes("interrupted")) return "interrupted";
  if (statuses.includes("fail")) return "fail";
  if (statuses.includes("xpass")) return "xpass";
  if (statuses.length > 0 && statuses.every((s) => s === "skip")) return "skip";
  if (statuses.length === 0) return "skip";
  return "pass";
}
