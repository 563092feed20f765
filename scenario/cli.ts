/**
 * `kvmsh scenario <file.ts>…` / `deno task scenario <files>`: imports each file, runs its
 * scenarios, prints KTAP v1 as results come, exits with kselftest's codes (0 pass, 1 fail,
 * 4 all skipped; 125 for skip with `--bisect`). `--json` / `--json=file` writes a report.
 * @module
 */

import { Kvm } from "../kvm/kvm.ts";
import { describeError } from "./context.ts";
import { kernelRelease, vendorModules } from "../kvm/host.ts";
import { type KernelLogSource, KmsgReader } from "../kvm/kmsg.ts";
import { diag, headerLines, type HostHeader, indent, ktapName, resultLine, scenarioLines, totalsLine } from "./ktap.ts";
import { exitCode, type FileReport, totals } from "./result.ts";
import { runEntries, runFile, type RunHooks } from "./runner.ts";
import { type ScenarioEntry, setAutoRunner } from "./registry.ts";

/** The host as the header and the JSON report show it. */
export interface HostInfo {
  kernel: string;
  vendor: { name: string; parameters: Record<string, string> }[];
  apiVersion: number | string;
}

/** Reads the host facts (a host without /dev/kvm reports why in apiVersion). */
export function hostInfo(): HostInfo {
  let apiVersion: number | string;
  try {
    using kvm = Kvm.open();
    apiVersion = kvm.apiVersion();
  } catch (e) {
    apiVersion = `unavailable (${describeError(e)})`;
  }
  return { kernel: kernelRelease(), vendor: vendorModules(), apiVersion };
}

function header(h: HostInfo): HostHeader {
  const vendor = h.vendor.map((m) => {
    const p = Object.entries(m.parameters).map(([k, v]) => `${k}=${v}`).join(" ");
    return p ? `${m.name} (${p})` : m.name;
  }).join(", ") || "none loaded";
  return { kernel: h.kernel, vendor, apiVersion: h.apiVersion };
}

/** Options of {@link runScenarioFiles}. */
export interface RunOptions {
  /** Where KTAP lines go (default: stdout). */
  write?: (text: string) => void;
  /** The kernel log (default: /dev/kmsg). */
  log?: KernelLogSource;
  /** Map skip to 125 (`git bisect run`). */
  bisect?: boolean;
}

/** A whole run's outcome. */
export interface RunResult {
  host: HostInfo;
  files: FileReport[];
  exitCode: number;
}

const enc = new TextEncoder();
function writeStdout(text: string): void {
  const b = enc.encode(text);
  for (let off = 0; off < b.length;) off += Deno.stdout.writeSync(b.subarray(off));
}
function writeStderr(text: string): void {
  const b = enc.encode(text);
  for (let off = 0; off < b.length;) off += Deno.stderr.writeSync(b.subarray(off));
}

/**
 * Runs `sources`: file paths (imported) or, for a file executed directly, its registered entries.
 * Prints KTAP as it goes.
 */
export async function runScenarioSources(
  sources: readonly (string | { file: string; entries: ScenarioEntry[] })[],
  opts: RunOptions = {},
): Promise<RunResult> {
  const write = opts.write ?? writeStdout;
  const emit = (lines: string[]) => write(lines.map((l) => l + "\n").join(""));
  const ownLog = opts.log === undefined;
  const log = opts.log ?? new KmsgReader();
  const host = hostInfo();
  const nested = sources.length > 1;
  const depth = nested ? 1 : 0;
  emit(["KTAP version 1", ...headerLines(header(host))]);
  if (log.unavailable) emit([`# kernel log: ${log.unavailable}`]);
  if (nested) emit([`1..${sources.length}`]);
  const hooks: RunHooks = {
    onPlan(file, count) {
      const head = nested ? ["KTAP version 1", `# Subtest: ${ktapName(file)}`] : [`# file: ${file}`];
      emit(indent([...head, ...(count ? [`1..${count}`] : [])], depth));
    },
    onScenario(_file, i, r) {
      emit(indent([...indent(scenarioLines(r), 1), resultLine(i + 1, r.name, r.status, r.reason)], depth));
    },
  };
  const files: FileReport[] = [];
  try {
    for (const [i, src] of sources.entries()) {
      const f = typeof src === "string"
        ? await runFile(src, log, hooks)
        : await runEntries(src.file, src.entries, log, hooks);
      files.push(f);
      if (f.scenarios.length === 0) {
        emit(indent([`1..0 # ${f.status === "skip" ? "SKIP " : ""}${f.reason ?? ""}`], depth));
      }
      if (nested) emit([resultLine(i + 1, f.file, f.status, f.reason)]);
      else if (f.scenarios.length === 0) emit(diag(`error: ${f.reason}`));
    }
  } finally {
    if (ownLog) log.close();
  }
  const t = totals(files);
  emit([totalsLine(t)]);
  return { host, files, exitCode: exitCode(t, opts.bisect) };
}

const USAGE = `usage: kvmsh scenario [--bisect] [--json[=file]] <file.ts>…
  Runs scenario files (Deno TypeScript importing mod.ts) and prints KTAP v1.
  Exit codes (kselftest): 0 pass, 1 fail, 4 all skipped; --bisect maps skip to 125 for git bisect run.
  --json writes a machine-readable report to stdout (KTAP then goes to stderr); --json=FILE to a file.`;

function jsonReplacer(_k: string, v: unknown): unknown {
  return typeof v === "bigint" ? `0x${v.toString(16)}` : v;
}

/** The machine-readable report. */
export function jsonReport(r: RunResult): Record<string, unknown> {
  return {
    format: "kvmsh-scenario-report",
    version: 1,
    host: r.host,
    totals: totals(r.files),
    exitCode: r.exitCode,
    files: r.files,
  };
}

/**
 * The scenario runner's command line (`kvmsh scenario …`). Returns the exit code; usage errors
 * answer 2.
 */
export async function runScenarioCli(args: string[]): Promise<number> {
  let bisect = false;
  let json: string | undefined;
  const files: string[] = [];
  for (const a of args) {
    if (a === "--bisect") bisect = true;
    else if (a === "--json") json = "-";
    else if (a.startsWith("--json=")) json = a.slice(7) || "-";
    else if (a === "-h" || a === "--help") {
      writeStdout(USAGE + "\n");
      return 0;
    } else if (a.startsWith("-")) {
      writeStderr(`kvmsh scenario: unknown option '${a}'\n${USAGE}\n`);
      return 2;
    } else files.push(a);
  }
  if (files.length === 0) {
    writeStderr(`kvmsh scenario: no scenario file given\n${USAGE}\n`);
    return 2;
  }
  const r = await runScenarioSources(files, { bisect, write: json === "-" ? writeStderr : writeStdout });
  if (json !== undefined) {
    const text = JSON.stringify(jsonReport(r), jsonReplacer, 2) + "\n";
    if (json === "-") writeStdout(text);
    else Deno.writeTextFileSync(json, text);
  }
  return r.exitCode;
}

// A scenario file executed directly (`deno run … file.ts`) runs its own scenarios.
setAutoRunner(async (entries) => {
  const bisect = Deno.args.includes("--bisect");
  const r = await runScenarioSources([{ file: Deno.mainModule, entries }], { bisect });
  return r.exitCode;
});
