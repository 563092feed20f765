/**
 * The machine a run was made on, and the Markdown form of the table for bench/RESULTS.md.
 * @module
 */

import { kernelRelease, vendorModules } from "../mod.ts";
import { readProcText } from "../ffi/procfs.ts";
import { HEADER, rowCells, type RowResult } from "./stats.ts";

/** Where the numbers come from. */
export interface Machine {
  kernel: string;
  cpu: string;
  cores: number;
  kvmModule: string;
  deno: string;
  gcc: string;
  qemu: string;
  summary: string;
}

async function firstLine(cmd: string, args: string[]): Promise<string> {
  try {
    const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).output();
    return new TextDecoder().decode(r.stdout).split("\n")[0].trim();
  } catch {
    return "absent";
  }
}

/** Kernel, CPU, KVM vendor module, Deno and gcc versions. */
export async function machine(): Promise<Machine> {
  const cpuinfo = readProcText("/proc/cpuinfo") ?? "";
  const cpu = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? "unknown";
  const cores = (cpuinfo.match(/^processor\s*:/gm) ?? []).length;
  const kernel = kernelRelease();
  const kvmModule = vendorModules().map((m) => m.name).join(",") || "no KVM module";
  const gcc = await firstLine("gcc", ["--version"]);
  const qemu = await firstLine("qemu-system-x86_64", ["--version"]);
  const summary = `Linux ${kernel}, ${cpu} ×${cores}, ${kvmModule}, Deno ${Deno.version.deno}`;
  return { kernel, cpu, cores, kvmModule, deno: Deno.version.deno, gcc, qemu, summary };
}

/** The 1-minute load average: other work on the machine skews timings, so the table records it. */
export function loadAverage(): string {
  return (readProcText("/proc/loadavg") ?? "?").split(" ")[0];
}

/** The table as Markdown, with date, machine and the load around the run. */
export function markdown(rows: RowResult[], m: Machine, seconds: number, load = ""): string {
  const esc = (s: string) => s.replaceAll("|", "\\|");
  return [
    "# kvmsh bench results",
    "",
    `Run: ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, \`deno task bench\` (${
      seconds.toFixed(0)
    } s).`,
    `Machine: ${m.summary}; ${m.gcc}; ${m.qemu || "QEMU absent"}.`,
    ...(load ? [`Load average (1 min) before → after the run: ${load}.`] : []),
    "Method, what each row measures and what dominates the misses: [bench/README.md](README.md).",
    "",
    `| ${HEADER.join(" | ")} |`,
    `|${HEADER.map(() => " --- ").join("|")}|`,
    ...rows.map((r) => `| ${rowCells(r).map(esc).join(" | ")} |`),
    "",
  ].join("\n");
}
