import { deepStrictEqual, strictEqual, throws } from "node:assert/strict";
import {
  formatTable,
  formatTarget,
  formatValue,
  gbps,
  median,
  pairedRatio,
  ratio,
  rowCells,
  summarize,
  summarizeRounds,
  verdict,
} from "../../bench/stats.ts";
import { cBackingArg, describeBacking } from "../../bench/rows/memory.ts";

Deno.test("median: odd, even, unsorted input left alone, empty throws", () => {
  strictEqual(median([3, 1, 2]), 2);
  strictEqual(median([4, 1, 3, 2]), 2.5);
  const xs = [5, 1, 4];
  strictEqual(median(xs), 4);
  deepStrictEqual(xs, [5, 1, 4]);
  strictEqual(median([7]), 7);
  throws(() => median([]), RangeError);
});

Deno.test("ratio: a/b, NaN for missing or zero baseline", () => {
  strictEqual(ratio(300, 200), 1.5);
  strictEqual(Number.isNaN(ratio(1, 0)), true);
  strictEqual(Number.isNaN(ratio(undefined, 2)), true);
  strictEqual(Number.isNaN(ratio(1, undefined)), true);
});

Deno.test("gbps: bytes per ns is GB/s", () => {
  strictEqual(gbps(2 ** 30, 2 ** 30), 1);
  strictEqual(gbps(10e9, 1e9), 10);
  strictEqual(Number.isNaN(gbps(1, 0)), true);
});

Deno.test("verdict: max and min targets, boundaries inclusive, skip and info", () => {
  const max = { kind: "max" as const, value: 1.05 };
  const min = { kind: "min" as const, value: 0.9 };
  strictEqual(verdict(1.05, max), "pass");
  strictEqual(verdict(1.0501, max), "miss");
  strictEqual(verdict(0.9, min), "pass");
  strictEqual(verdict(0.89, min), "miss");
  strictEqual(verdict(NaN, max), "skip");
  strictEqual(verdict(1.2, undefined), "info");
  strictEqual(verdict(NaN, undefined), "skip");
  strictEqual(formatTarget(max), "≤ 1.05");
  strictEqual(formatTarget(min), "≥ 0.9");
  strictEqual(formatTarget(undefined), "—");
});

Deno.test("summarize: medians of both sides, ratio kvmsh/C, reps, verdict", () => {
  const r = summarize(
    "2",
    "pio",
    "ns",
    { label: "kvmsh", samples: [10, 30, 20], per: 1000 },
    { label: "C", samples: [10, 10, 20, 40], per: 1000 },
    { kind: "max", value: 1.05 },
  );
  strictEqual(r.kvmsh, 20);
  strictEqual(r.baseline, 15);
  strictEqual(r.ratio, 20 / 15);
  strictEqual(r.verdict, "miss");
  strictEqual(r.reps, "3×1000 / 4×1000");
  const s = summarize("7", "qemu", "ns", undefined, undefined, { kind: "max", value: 0.5 }, "not installed");
  strictEqual(s.verdict, "skip");
  strictEqual(rowCells(s).at(-1), "skip (not installed)");
});

Deno.test("formatValue picks a unit; formatTable aligns columns", () => {
  strictEqual(formatValue(312.4, "ns"), "312 ns");
  strictEqual(formatValue(10_400, "ns"), "10.4 µs");
  strictEqual(formatValue(2_310_000, "ns"), "2.31 ms");
  strictEqual(formatValue(1.2e9, "ns"), "1.20 s");
  strictEqual(formatValue(4.123, "GB/s"), "4.12 GB/s");
  strictEqual(formatValue(undefined, "ns"), "—");
  strictEqual(formatTable([["a", "bb"], ["ccc", "d"]]), "a    bb\n---  --\nccc  d");
});

Deno.test("pairedRatio: median of per-round ratios; drift between rounds cancels", () => {
  const side = (label: string, samples: number[]) => ({ label, samples, per: 1 });
  // Round 2 runs on a loaded machine (both sides 3× slower): the ratio stays 1.1.
  const rounds = [
    { baseline: side("C", [10, 10, 10]), kvmsh: side("kvmsh", [11, 11, 11]) },
    { baseline: side("C", [30, 30]), kvmsh: side("kvmsh", [33, 33]) },
    { baseline: side("C", [10]), kvmsh: side("kvmsh", [11]) },
  ];
  strictEqual(pairedRatio(rounds).toFixed(6), "1.100000");
  // Medians over all samples would say 11/10 here too, but not when rounds are unbalanced:
  const skew = [
    { baseline: side("C", [10, 10, 10, 10]), kvmsh: side("kvmsh", [11]) },
    { baseline: side("C", [30]), kvmsh: side("kvmsh", [33, 33, 33, 33]) },
  ];
  strictEqual(pairedRatio(skew).toFixed(6), "1.100000");
  strictEqual(Number.isNaN(pairedRatio([])), true);
  const r = summarize(
    "2",
    "pio",
    "ns",
    side("kvmsh", [11, 33]),
    side("C", [10, 30]),
    { kind: "max", value: 1.05 },
    "",
    1.1,
  );
  strictEqual(r.ratio, 1.1);
  strictEqual(r.verdict, "miss");
});

Deno.test("pairedRatio and summarizeRounds: the median of the rounds' ratios, not a mean or a pooled median", () => {
  const side = (label: string, samples: number[]) => ({ label, samples, per: 1 });
  // Round ratios 1.2, 1.0 and 3.0 (per-round medians 10/12, 20/20, 40/120): their median is 1.2.
  // A mean of them (1.733), the ratio of the median round-medians (20/20 = 1.0), the ratio of round
  // means and the ratio of pooled medians (20/20 = 1.0) all differ, as do swapped sides (0.833).
  const c = [side("C", [10, 10, 11]), side("C", [20]), side("C", [40])];
  const k = [side("kvmsh", [12, 12, 50]), side("kvmsh", [20]), side("kvmsh", [120])];
  strictEqual(pairedRatio(c.map((b, i) => ({ baseline: b, kvmsh: k[i] }))).toFixed(6), "1.200000");
  const r = summarizeRounds("2", "pio", "ns", k, c, { kind: "max", value: 1.3 }, "note");
  strictEqual(r.ratio.toFixed(6), "1.200000");
  strictEqual(r.verdict, "pass");
  strictEqual(r.kvmsh, 20); // median of all kvmsh samples [12, 12, 50, 20, 120]
  strictEqual(r.baseline, 11); // median of all C samples [10, 10, 11, 20, 40]
  strictEqual(r.reps, "5×1 / 5×1");
  // A round missing on one side is left out of the ratio.
  const partial = summarizeRounds("2", "pio", "ns", [k[0], side("kvmsh", [])], [c[0], c[1]], undefined);
  strictEqual(partial.ratio.toFixed(6), "1.200000");
  // summarize takes the paired ratio it is given, not the ratio of its medians (33/30 would be 1.1).
  const s = summarize(
    "2",
    "pio",
    "ns",
    side("kvmsh", [11, 33]),
    side("C", [10, 20]),
    { kind: "max", value: 1.3 },
    "",
    1.25,
  );
  strictEqual(s.ratio, 1.25);
  strictEqual(s.verdict, "pass");
});

Deno.test("memory rows: the row's name and note say anonymous memory, and why, when no gmem was used", () => {
  const gmem = describeBacking("fill + verify 1 GiB gmem mapping", { kind: "gmem" }, "bytes written + read");
  deepStrictEqual(gmem, { name: "fill + verify 1 GiB gmem mapping", note: "bytes written + read" });
  const anon = describeBacking("fill + verify 1 GiB gmem mapping", { kind: "anon", why: "no gmem here" }, "n");
  deepStrictEqual(anon, { name: "fill + verify 1 GiB anonymous mapping", note: "n; anonymous memory: no gmem here" });
  strictEqual(cBackingArg({ kind: "anon", why: "x" }), "anon");
  strictEqual(cBackingArg({ kind: "gmem" }), "gmem");
});
