/**
 * `kvmsh scenario <file.ts>…` / `deno task scenario <files>`: imports each file, runs its
 * scenarios, prints KTAP v1 as results come, exits with kselftest's codes (0 pass, 1 fail,
 * 4 all skipped; 125 for skip with `--bisect`), 2 for a scenario file that cannot be loaded or a bad
 * command line (the user's error; 128 with `--bisect`, which stops `git bisect run` where 2 would
 * read "bad"), 130 after Ctrl-C. `--timeout <s>` sets each scenario's
 * deadline; `--json` / `--json=file` writes a report.
 * @module
 */

import { Kvm, kvmDevicePath } from "../kvm/kvm.ts";
import { describeError } from "./context.ts";
import { type CapReport, hostReport, kernelRelease, vendorModules } from "../kvm/host.ts";
import { CAP } from "../kvm/abi.ts";
import { type KernelLogSource, KmsgReader } from "../kvm/kmsg.ts";
import {
  diag,
  headerLines,
  type HostHeader,
  indent,
  ktapName,
  resultLine,
  scenarioTrailer,
  subtestHead,
  totalsLine,
} from "./ktap.ts";
import { BISECT_ABORT, exitCode, type FileReport, INTERRUPTED, totals, USAGE_ERROR } from "./result.ts";
import { NOT_RUN_INTERRUPTED, runEntries, runFile, type RunHooks } from "./runner.ts";
import { watchInterrupt } from "./interrupt.ts";
import { type ScenarioEntry, setAutoRunner } from "./registry.ts";

/** The host as the header and the JSON report show it. */
export interface HostInfo {
  kernel: string;
  vendor: { name: string; parameters: Record<string, string> }[];
  apiVersion: number | string;
  /** The guest_memfd and memory-attribute caps ({@link HOST_CAPS}), rows as `kvmsh caps --json` gives them; absent without KVM. */
  caps?: CapReport[];
}

/** Caps the header names for every run: whether this KVM has guest_memfd, its flags, memory attributes. */
export const HOST_CAPS: readonly number[] = [CAP.GUEST_MEMFD, CAP.GUEST_MEMFD_FLAGS, CAP.MEMORY_ATTRIBUTES];

/** Reads the host facts (a host without /dev/kvm reports why in apiVersion). */
export function hostInfo(): HostInfo {
  let apiVersion: number | string;
  let caps: CapReport[] | undefined;
  try {
    using kvm = Kvm.open(kvmDevicePath());
    apiVersion = kvm.apiVersion();
    try {
      caps = hostReport(kvm, [...HOST_CAPS]).caps;
    } catch {
      // No default VM: the scenarios that need one say so; the header just omits its caps.
    }
  } catch (e) {
    apiVersion = `unavailable (${describeError(e)})`;
  }
  return { kernel: kernelRelease(), vendor: vendorModules(), apiVersion, ...(caps ? { caps } : {}) };
}

function header(h: HostInfo): HostHeader {
  const vendor = h.vendor.map((m) => {
    const p = Object.entries(m.parameters).map(([k, v]) => `${k}=${v}`).join(" ");
    return p ? `${m.name} (${p})` : m.name;
  }).join(", ") || "none loaded";
  // A default VM's answer, decoded as `kvmsh caps` decodes it (an error name as it is).
  const caps = h.caps?.map((c) => `${c.name.replace(/^KVM_CAP_/, "")}=${typeof c.vm === "number" ? c.decoded : c.vm}`)
    .join(", ");
  return { kernel: h.kernel, vendor, apiVersion: h.apiVersion, ...(caps ? { caps } : {}) };
}

/** Options of {@link runScenarioSources}. */
export interface RunOptions {
  /** Where KTAP lines go (default: stdout). Each line is written as soon as it is known. */
  write?: (text: string) => void;
  /** The kernel log (default: /dev/kmsg). */
  log?: KernelLogSource;
  /** Map skip to 125 (`git bisect run`). */
  bisect?: boolean;
  /** Every scenario's deadline unless it names its own (default 60 s). */
  timeoutMs?: number;
  /** Watch for Ctrl-C (default true): the running step is reported interrupted and the run exits 130. */
  interruptible?: boolean;
}

/** A whole run's outcome. */
export interface RunResult {
  host: HostInfo;
  files: FileReport[];
  exitCode: number;
  /** Ctrl-C cut the run short. */
  interrupted: boolean;
}

const enc = new TextEncoder();
/** Writes all of `text`; a reader that went away (`kvmsh scenario x.ts | head`) ends the output quietly. */
function writeAll(f: typeof Deno.stdout | typeof Deno.stderr, text: string): void {
  const b = enc.encode(text);
  try {
    for (let off = 0; off < b.length;) off += f.writeSync(b.subarray(off));
  } catch (e) {
    if (!(e instanceof Deno.errors.BrokenPipe)) throw e;
  }
}
function writeStdout(text: string): void {
  writeAll(Deno.stdout, text);
}
function writeStderr(text: string): void {
  writeAll(Deno.stderr, text);
}

/**
 * Runs `sources`: file paths (imported) or, for a file executed directly, its registered entries.
 * Prints KTAP as it goes: every note and result line the moment it is known, so a run that hangs
 * or is killed shows how far it got.
 */
export async function runScenarioSources(
  sources: readonly (string | { file: string; entries: ScenarioEntry[] })[],
  opts: RunOptions = {},
): Promise<RunResult> {
  const write = opts.write ?? writeStdout;
  const emit = (lines: string[]) => {
    if (lines.length) write(lines.map((l) => l + "\n").join(""));
  };
  const ownLog = opts.log === undefined;
  const log = opts.log ?? new KmsgReader();
  const interrupt = opts.interruptible === false ? undefined : watchInterrupt();
  const host = hostInfo();
  const nested = sources.length > 1;
  const depth = nested ? 1 : 0;
  emit(["KTAP version 1", ...headerLines(header(host))]);
  if (log.unavailable) emit([`# kernel log: ${log.unavailable}`]);
  if (nested) emit([`1..${sources.length}`]);
  // A scenario's subtest opens with its first result (one skipped up front has none): notes
  // before it wait, and go out at the parent's level when no result comes (no empty subtest).
  let pendingHead: string | undefined;
  let pendingNotes: string[] = [];
  const sub = (lines: string[]) => {
    if (pendingHead !== undefined) {
      emit(indent([...subtestHead(pendingHead), ...pendingNotes], depth + 1));
      pendingHead = undefined;
      pendingNotes = [];
    }
    emit(indent(lines, depth + 1));
  };
  const hooks: RunHooks = {
    onPlan(file, count) {
      const head = nested ? ["KTAP version 1", `# Subtest: ${ktapName(file)}`] : [`# file: ${file}`];
      emit(indent([...head, ...(count ? [`1..${count}`] : [])], depth));
    },
    onScenarioStart(_file, _i, name) {
      pendingHead = name;
      pendingNotes = [];
    },
    onNote(text) {
      if (pendingHead !== undefined) pendingNotes.push(...diag(text));
      else sub(diag(text));
    },
    onLine(l, n) {
      sub([resultLine(n, l.name, l.status, l.reason)]);
    },
    onScenario(_file, i, r) {
      const opened = pendingHead === undefined && r.lines.length > 0;
      if (pendingHead !== undefined) emit(indent(pendingNotes, depth));
      pendingHead = undefined;
      pendingNotes = [];
      emit(indent(scenarioTrailer(r), opened ? depth + 1 : depth));
      emit(indent([resultLine(i + 1, r.name, r.status, r.reason)], depth));
    },
  };
  const files: FileReport[] = [];
  // A promise no step awaited (an un-awaited async expectation or step) that rejects later, e.g.
  // with "scenario 'a' already ended": reported and counted as the scenario file's error (exit 2,
  // 128 with --bisect), not left to crash the run with Deno's exit 1 ("bad" to git bisect run).
  const strays: string[] = [];
  const onStray = (e: PromiseRejectionEvent) => {
    e.preventDefault();
    const r = e.reason;
    const why = r instanceof Error ? `${r.name}: ${r.message}` : String(r);
    strays.push(why);
    emit([`# error: a promise no step awaited rejected (${why}): await every async step and expectation`]);
  };
  globalThis.addEventListener("unhandledrejection", onStray);
  try {
    for (const [i, src] of sources.entries()) {
      const name = typeof src === "string" ? src : src.file;
      let f: FileReport;
      if (interrupt && interrupt.count() > 0) {
        f = { file: name, status: "skip", reason: NOT_RUN_INTERRUPTED, scenarios: [] };
      } else {
        const ro = { log, hooks, timeoutMs: opts.timeoutMs, interrupt };
        f = typeof src === "string" ? await runFile(src, ro) : await runEntries(src.file, src.entries, ro);
        if (f.scenarios.length === 0) {
          emit(indent([`1..0 # ${f.status === "skip" ? "SKIP " : ""}${firstLine(f.reason)}`], depth));
          if (nested && firstLine(f.reason) !== (f.reason ?? "").trim()) {
            emit(indent(diag(`error: ${f.reason}`), depth));
          }
          if (f.broken) writeStderr(`kvmsh scenario: ${f.file}: ${f.reason}\n`);
        }
      }
      files.push(f);
      if (nested) emit([resultLine(i + 1, f.file, f.status, f.scenarios.length ? f.reason : firstLine(f.reason))]);
      else if (f.scenarios.length === 0) emit(diag(`error: ${f.reason}`));
    }
  } finally {
    globalThis.removeEventListener("unhandledrejection", onStray);
    if (ownLog) log.close();
    interrupt?.close();
  }
  const t = totals(files);
  t.error += strays.length;
  const interrupted = (interrupt?.count() ?? 0) > 0;
  if (interrupted) emit(["# interrupted (SIGINT, Ctrl-C): the run stopped early; exit 130"]);
  emit([totalsLine(t)]);
  const code = interrupted ? INTERRUPTED : exitCode(t, opts.bisect);
  return { host, files, exitCode: code, interrupted };
}

/**
 * The first line of a file's reason, for the directive of its `1..0` plan line and its result line:
 * a multi-line reason (a syntax error's code frame) is printed in full as `# error:` lines.
 */
function firstLine(reason: string | undefined): string {
  return (reason ?? "").split("\n")[0].trim();
}

const USAGE = `usage: kvmsh scenario [--bisect] [--timeout <s>] [--json[=file]] <file.ts>…
  Runs scenario files (Deno TypeScript importing mod.ts) and prints KTAP v1 as results come.
  Exit codes (kselftest): 0 pass, 1 fail, 4 all skipped (e.g. no /dev/kvm); --bisect maps skip to 125
  for git bisect run. 2: a scenario file could not be loaded (or bad usage), 128 with --bisect (stops
  git bisect run, where 2 would read "bad"); 130: interrupted (Ctrl-C).
  --timeout <s>: each scenario's deadline (default 60; a scenario's own timeoutMs wins); a guest run
  still going then is stopped and its step fails "deadline exceeded".
  --json writes a machine-readable report to stdout (KTAP then goes to stderr); --json=FILE to a file.
  $KVMSH_DEVICE: the KVM device scenarios open (default /dev/kvm).`;

/** `--timeout` seconds → ms; undefined when not a positive number. */
function parseTimeout(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d+(\.\d+)?$|^\.\d+$/.test(text)) return undefined;
  const ms = Math.round(Number(text) * 1000);
  return ms > 0 ? ms : undefined;
}

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
 * answer 2 (128 when `--bisect` is among the arguments).
 */
export async function runScenarioCli(args: string[]): Promise<number> {
  let bisect = false;
  const usageError = args.includes("--bisect") ? BISECT_ABORT : USAGE_ERROR;
  let json: string | undefined;
  let timeoutMs: number | undefined;
  const files: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--timeout" || a.startsWith("--timeout=")) {
      const v = a === "--timeout" ? args[++i] : a.slice(10);
      timeoutMs = parseTimeout(v);
      if (timeoutMs === undefined) {
        writeStderr(`kvmsh scenario: --timeout needs a number of seconds > 0, got '${v ?? ""}'\n${USAGE}\n`);
        return usageError;
      }
    } else if (a === "--bisect") bisect = true;
    else if (a === "--json") json = "-";
    else if (a.startsWith("--json=")) json = a.slice(7) || "-";
    else if (a === "-h" || a === "--help") {
      writeStdout(USAGE + "\n");
      return 0;
    } else if (a.startsWith("-")) {
      writeStderr(`kvmsh scenario: unknown option '${a}'\n${USAGE}\n`);
      return usageError;
    } else files.push(a);
  }
  if (files.length === 0) {
    writeStderr(`kvmsh scenario: no scenario file given\n${USAGE}\n`);
    return usageError;
  }
  const r = await runScenarioSources(files, { bisect, timeoutMs, write: json === "-" ? writeStderr : writeStdout });
  if (json !== undefined) {
    const text = JSON.stringify(jsonReport(r), jsonReplacer, 2) + "\n";
    if (json === "-") writeStdout(text);
    else Deno.writeTextFileSync(json, text);
  }
  return r.exitCode;
}

// A scenario file executed directly (`deno run … file.ts`) runs its own scenarios.
setAutoRunner(async (entries) => {
  const args = Deno.args;
  const bisect = args.includes("--bisect");
  const at = args.findIndex((a) => a === "--timeout" || a.startsWith("--timeout="));
  const timeoutMs = at < 0 ? undefined : parseTimeout(args[at] === "--timeout" ? args[at + 1] : args[at].slice(10));
  const r = await runScenarioSources([{ file: Deno.mainModule, entries }], { bisect, timeoutMs });
  return r.exitCode;
});
