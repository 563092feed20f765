/**
 * The bench harness's arithmetic: medians, ratios, bandwidth, targets and verdicts, and the
 * formatting of one table row. Pure functions (unit-tested in tests/unit/bench_stats_test.ts).
 * @module
 */

/** The median of `xs` (mean of the two middle values for an even count). Throws on an empty list. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError("median of no samples");
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** `a / b`; NaN when either is missing or b is 0. */
export function ratio(a: number | undefined, b: number | undefined): number {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return NaN;
  return a / b;
}

/** Bandwidth in GB/s (10^9 bytes per second) for `bytes` moved in `ns` nanoseconds. */
export function gbps(bytes: number, ns: number): number {
  if (!(ns > 0)) return NaN;
  return bytes / ns;
}

/** What a row's ratio (kvmsh / baseline) must satisfy: at most (`max`) or at least (`min`) `value`. */
export interface Target {
  kind: "max" | "min";
  value: number;
}

/** A row's verdict. `info` rows have no target; `error` when the row threw (the bench exits 1, as on a miss). */
export type Verdict = "pass" | "miss" | "skip" | "info" | "error";

/** Pass/miss of `r` against `target`; `skip` when the ratio is unknown, `info` without a target. */
export function verdict(r: number, target: Target | undefined): Verdict {
  if (!target) return Number.isFinite(r) ? "info" : "skip";
  if (!Number.isFinite(r)) return "skip";
  return target.kind === "max" ? (r <= target.value ? "pass" : "miss") : (r >= target.value ? "pass" : "miss");
}

/** `≤ 1.05` / `≥ 0.9`, or `—`. */
export function formatTarget(t: Target | undefined): string {
  return t ? `${t.kind === "max" ? "≤" : "≥"} ${t.value}` : "—";
}

/** A ratio as the table prints it (`1.024`), or `—` when unknown. */
export function formatRatio(r: number): string {
  return Number.isFinite(r) ? r.toFixed(3) : "—";
}

/** The unit a row's values are in. */
export type Unit = "ns" | "GB/s";

/** A duration in ns as `312 ns`, `10.4 µs`, `2.31 ms`, `1.20 s`; a bandwidth as `4.12 GB/s`. */
export function formatValue(v: number | undefined, unit: Unit): string {
  if (v === undefined || !Number.isFinite(v)) return "—";
  if (unit === "GB/s") return `${v.toFixed(2)} GB/s`;
  if (v < 1e3) return `${v.toFixed(0)} ns`;
  if (v < 1e6) return `${(v / 1e3).toFixed(1)} µs`;
  if (v < 1e9) return `${(v / 1e6).toFixed(2)} ms`;
  return `${(v / 1e9).toFixed(2)} s`;
}

/** Samples of one side of a row: one value per repetition, `per` operations each. */
export interface Side {
  /** Label (`kvmsh`, `C`, `QEMU`, …). */
  label: string;
  /** One value per repetition (ns per operation, or GB/s). */
  samples: number[];
  /** Operations per repetition. */
  per: number;
}

/** One row's result, as printed and as `--json`. */
export interface RowResult {
  id: string;
  name: string;
  unit: Unit;
  kvmsh?: number;
  baseline?: number;
  baselineLabel: string;
  ratio: number;
  reps: string;
  target: string;
  verdict: Verdict;
  note?: string;
  samples?: { kvmsh: number[]; baseline: number[] };
}

/**
 * The ratio of a row measured in rounds (each round: baseline, then kvmsh, close in time): the
 * median of the per-round ratios of medians, so load that drifts between rounds (other work on
 * the machine) cancels out. NaN when there are no complete rounds.
 */
export function pairedRatio(rounds: readonly { kvmsh: Side; baseline: Side }[]): number {
  const rs = rounds
    .filter((r) => r.kvmsh.samples.length && r.baseline.samples.length)
    .map((r) => ratio(median(r.kvmsh.samples), median(r.baseline.samples)));
  return rs.length ? median(rs) : NaN;
}

/** Concatenates the samples of several runs of the same side (interleaved rounds). */
export function merge(sides: readonly Side[]): Side | undefined {
  if (!sides.length) return undefined;
  return { label: sides[0].label, per: sides[0].per, samples: sides.flatMap((s) => s.samples) };
}

/**
 * A row measured in rounds (round i: `baseline[i]`, then `kvmsh[i]`): medians over all samples of
 * each side, ratio by {@link pairedRatio}. What every side-by-side row reports.
 */
export function summarizeRounds(
  id: string,
  name: string,
  unit: Unit,
  kvmsh: readonly Side[],
  baseline: readonly Side[],
  target: Target | undefined,
  note?: string,
): RowResult {
  const paired = pairedRatio(baseline.map((b, i) => ({ baseline: b, kvmsh: kvmsh[i] })).filter((r) => r.kvmsh));
  return summarize(id, name, unit, merge(kvmsh), merge(baseline), target, note, paired);
}

/**
 * Reduces both sides of a row to medians, ratio (kvmsh / baseline) and verdict. The ratio is
 * `paired` when given (see {@link pairedRatio}), else the ratio of the two medians.
 */
export function summarize(
  id: string,
  name: string,
  unit: Unit,
  kvmsh: Side | undefined,
  baseline: Side | undefined,
  target: Target | undefined,
  note?: string,
  paired?: number,
): RowResult {
  const k = kvmsh?.samples.length ? median(kvmsh.samples) : undefined;
  const b = baseline?.samples.length ? median(baseline.samples) : undefined;
  const r = paired ?? ratio(k, b);
  const reps = kvmsh?.samples.length
    ? `${kvmsh.samples.length}×${kvmsh.per}` +
      (baseline?.samples.length ? ` / ${baseline.samples.length}×${baseline.per}` : "")
    : "0";
  return {
    id,
    name,
    unit,
    kvmsh: k,
    baseline: b,
    baselineLabel: baseline?.label ?? "C",
    ratio: r,
    reps,
    target: formatTarget(target),
    verdict: verdict(r, target),
    note,
    samples: { kvmsh: kvmsh?.samples ?? [], baseline: baseline?.samples ?? [] },
  };
}

/** Lays out rows of cells as an aligned text table (first row is the header). */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, [...c].length)));
  const line = (r: readonly string[]) =>
    r.map((c, i) => c + " ".repeat(widths[i] - [...c].length)).join("  ").trimEnd();
  return [line(rows[0]), widths.map((w) => "-".repeat(w)).join("  "), ...rows.slice(1).map(line)].join("\n");
}

/** The printed cells of a row. */
export function rowCells(r: RowResult): string[] {
  return [
    `${r.id} ${r.name}`,
    formatValue(r.kvmsh, r.unit),
    (r.baselineLabel !== "C" && r.baseline !== undefined ? `${r.baselineLabel} ` : "") +
    formatValue(r.baseline, r.unit),
    formatRatio(r.ratio),
    r.reps,
    r.target,
    r.verdict + (r.note ? ` (${r.note})` : ""),
  ];
}

/** The header of the table. */
export const HEADER = ["row", "kvmsh median", "C median", "kvmsh/C", "reps", "target", "result"] as const;
