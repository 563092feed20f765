/**
 * `deno task bench`: builds the C baselines and runs every row side by side, kvmsh (through
 * mod.ts) against C, printing one table (or `--json`). `--quick` for fewer repetitions,
 * `--rows 1,5` for a subset, `--results FILE` to also write the table as Markdown.
 * @module
 */

import { parseArgs } from "node:util";
import { buildBaselines } from "./build.ts";
import { formatRatio, formatTable, HEADER, rowCells, type RowResult } from "./stats.ts";
import { loadAverage, machine, markdown } from "./report.ts";
import type { Row, RowContext } from "./rows/row.ts";
import { ioctlRow } from "./rows/ioctl.ts";
import { fillRow, punchRow } from "./rows/bulk.ts";
import { mmioRow, pioRow, setupRow } from "./rows/exits.ts";
import { processRow } from "./rows/process.ts";

const ROWS: Row[] = [ioctlRow, pioRow, mmioRow, setupRow, fillRow, punchRow, processRow];

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      json: { type: "boolean", default: false },
      quick: { type: "boolean", default: false },
      rows: { type: "string" },
      results: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log("usage: deno task bench [--json] [--quick] [--rows 1,2,7] [--results bench/RESULTS.md]");
    return 0;
  }
  // Row ids as the table prints them (1b, 7b) name their row (1, 7).
  const wanted = values.rows?.split(",").map((s) => s.trim().replace(/[a-z]$/, ""));
  const unknown = wanted?.filter((w) => !ROWS.some((r) => r.id === w));
  if (unknown?.length) {
    console.error(`bench: no row ${unknown.join(", ")} (rows: ${ROWS.map((r) => r.id).join(", ")})`);
    return 2;
  }
  const rows = [...ROWS].sort((a, b) => a.id.localeCompare(b.id)).filter((r) => !wanted || wanted.includes(r.id));
  const t0 = performance.now();
  const loadBefore = loadAverage();
  const bins = await buildBaselines();
  const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const tmp = await Deno.makeTempDir({ prefix: "kvmsh-bench-" });
  const ctx: RowContext = { bins, quick: values.quick, tmp, root };
  const results: RowResult[] = [];
  try {
    for (const row of rows) {
      // The row's name is known only once it ran (rows 4–5 name the memory this host gave them).
      if (!values.json) console.error(`# row ${row.id} …`);
      const rowStart = performance.now();
      const before = results.length;
      try {
        results.push(...await row.run(ctx));
      } catch (e) {
        results.push({
          id: row.id,
          name: row.name,
          unit: row.unit,
          baselineLabel: "C",
          ratio: NaN,
          reps: "0",
          target: "—",
          verdict: "error",
          note: `error: ${e instanceof Error ? e.message : String(e)}`.split("\n")[0],
        });
      }
      if (!values.json) {
        const took = ((performance.now() - rowStart) / 1000).toFixed(1);
        for (const r of results.slice(before)) {
          const ratio = Number.isFinite(r.ratio) ? `${formatRatio(r.ratio)}, ` : "";
          console.error(`#   ${r.id} ${r.name}: ${ratio}${r.verdict} (${took} s)`);
        }
      }
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
  const seconds = (performance.now() - t0) / 1000;
  const host = await machine();
  const load = `${loadBefore} → ${loadAverage()}`;
  if (values.json) {
    console.log(JSON.stringify(
      { date: new Date().toISOString(), machine: host, load, seconds, rows: results },
      (_k, v) => typeof v === "number" && !Number.isFinite(v) ? null : v,
      2,
    ));
  } else {
    console.log(`kvmsh bench — ${new Date().toISOString()} — ${host.summary}`);
    console.log(formatTable([[...HEADER], ...results.map(rowCells)]));
    console.log(`(${seconds.toFixed(1)} s; load average ${load})`);
  }
  if (values.results) await Deno.writeTextFile(values.results, markdown(results, host, seconds, load));
  return results.some((r) => r.verdict === "miss" || r.verdict === "error") ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main());
