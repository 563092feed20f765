/**
 * How each side of a row is measured: kvmsh in this process (batches timed with
 * performance.now), C baselines as child processes that print their own samples, and whole
 * processes timed from spawn to exit.
 * @module
 */

import type { Side } from "./stats.ts";

/**
 * Runs `batch(per)` once to warm up, then `reps` times, timing each. `toSample` turns a batch's
 * elapsed ns into the row's value (default: ns per operation).
 */
export function timeBatches(
  label: string,
  reps: number,
  per: number,
  batch: (per: number, rep: number) => void,
  toSample: (ns: number, per: number) => number = (ns, n) => ns / n,
): Side {
  batch(per, -1);
  const samples: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    batch(per, r);
    samples.push(toSample((performance.now() - t0) * 1e6, per));
  }
  return { label, samples, per };
}

/** Runs a C baseline (`bin reps per`) and reads the samples it prints. */
export async function runBaseline(bin: string, reps: number, per: number, ...extra: string[]): Promise<Side> {
  const r = await new Deno.Command(bin, {
    args: [String(reps), String(per), ...extra],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(r.stdout);
  if (!r.success) throw new Error(`${bin} failed (${r.code}): ${new TextDecoder().decode(r.stderr)}`);
  const j = JSON.parse(text.trim().split("\n").at(-1)!) as { per: number; samples: number[] };
  return { label: "C", samples: j.samples, per: j.per };
}

/** What a whole-process run printed and returned. */
export interface ProcessRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Wall time of `cmd args` from spawn to exit, `reps` times after one warm-up run, in ns.
 * `check` sees each run and throws when the output is wrong (a fast wrong answer is no answer).
 */
export async function timeProcess(
  label: string,
  cmd: string,
  args: string[],
  reps: number,
  check: (r: ProcessRun) => void,
  env?: Record<string, string>,
): Promise<Side> {
  const samples: number[] = [];
  for (let r = -1; r < reps; r++) {
    const t0 = performance.now();
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped", stdin: "null", env }).output();
    const ns = (performance.now() - t0) * 1e6;
    const dec = new TextDecoder();
    check({ code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) });
    if (r >= 0) samples.push(ns);
  }
  return { label, samples, per: 1 };
}
