/**
 * Printing: colour only on a terminal and never with NO_COLOR; JSON with bigints as hex strings;
 * every error as one line.
 * @module
 */

import { faultArgs, faultCause, KvmError } from "../core.ts";
import { UsageError } from "./usage_error.ts";
import { CommandFailed, osReason } from "./failure.ts";

const enc = new TextEncoder();

/** True when stdout is a terminal and NO_COLOR is unset. */
export function colourWanted(fd: "stdout" | "stderr" = "stdout"): boolean {
  const noColor = Deno.env.get("NO_COLOR");
  if (noColor !== undefined && noColor !== "") return false;
  return (fd === "stdout" ? Deno.stdout : Deno.stderr).isTerminal();
}

// SGR on/off codes (the pairs node:util's styleText uses). Written out rather than imported:
// loading any node: module costs ~10 ms of kvmsh start-up.
const SGR = {
  bold: [1, 22],
  dim: [2, 22],
  italic: [3, 23],
  underline: [4, 24],
  red: [31, 39],
  green: [32, 39],
  yellow: [33, 39],
  blue: [34, 39],
  magenta: [35, 39],
  cyan: [36, 39],
  gray: [90, 39],
} as const;

type Style = keyof typeof SGR;

/** Applies a style when colour is wanted. */
export function paint(style: Style, text: string, fd: "stdout" | "stderr" = "stdout"): string {
  if (!colourWanted(fd)) return text;
  const [on, off] = SGR[style];
  return `\x1b[${on}m${text}\x1b[${off}m`;
}

/** Bytes as two hex digits each, `sep` between them (`0a ff`, or `0aff` with ""). */
export function hexBytes(b: Uint8Array, sep = " "): string {
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join(sep);
}

/** JSON.stringify replacer: bigints as `0x…` strings, Uint8Arrays as hex strings. */
export function jsonReplacer(_k: string, v: unknown): unknown {
  if (typeof v === "bigint") return `0x${v.toString(16)}`;
  if (v instanceof Uint8Array) return hexBytes(v, "");
  return v;
}

/** One JSON line. */
export function jsonLine(v: unknown): string {
  return JSON.stringify(v, jsonReplacer);
}

// Asked once, at start: a terminal that hung up no longer answers isatty.
const STDOUT_TTY = Deno.stdout.isTerminal();
const STDERR_TTY = Deno.stderr.isTerminal();

/** Writes text to stdout (synchronously, so output order matches command order). */
export function out(text: string): void {
  writeAll(Deno.stdout, enc.encode(text.endsWith("\n") ? text : text + "\n"), STDOUT_TTY);
}

/** Writes text to stderr. */
export function err(text: string): void {
  writeAll(Deno.stderr, enc.encode(text.endsWith("\n") ? text : text + "\n"), STDERR_TTY);
}

function writeAll(f: { writeSync(p: Uint8Array): number }, b: Uint8Array, tty: boolean): void {
  let off = 0;
  while (off < b.length) {
    try {
      off += f.writeSync(b.subarray(off));
    } catch (e) {
      // The reader went away: a closed pipe, or a terminal that hung up (EIO: its window closed).
      if (e instanceof Deno.errors.BrokenPipe) return;
      if (tty && (e as { code?: string }).code === "EIO") return;
      throw e;
    }
  }
}

/**
 * The printed form of any error: its message, without a JS class name (`RangeError: `) or Deno's
 * `(os error N)` — except a TypeError/ReferenceError, kvmsh's own bug, shown as `internal error: …`;
 * a message of several lines (the assembler's answer) goes on indented lines.
 */
export function errorLine(e: unknown): string {
  if (e instanceof KvmError && e.errnoName === "EFAULT" && e.syscall.startsWith("process_vm_")) {
    // The signal a real access would get, decided where the hint is (faultCause: the mapping's
    // protection, then anonymous memory SIGSEGV, a guest_memfd page SIGBUS); unknown: not said.
    const { signal } = faultCause(e.syscall === "process_vm_readv" ? "read" : "write", faultArgs(e.args));
    if (signal) return `EFAULT: would ${signal} — ${indentLines(e.message)}`;
  }
  if (e instanceof KvmError || e instanceof UsageError || e instanceof CommandFailed) return indentLines(e.message);
  if (isOsError(e)) {
    // "Is a directory (os error 21): readfile '/tmp'" → "is a directory (readfile '/tmp')"
    const tail = /\(os error \d+\): (.*)$/s.exec((e as Error).message)?.[1];
    return indentLines(`${osReason(e)}${tail ? ` (${tail})` : ""}`);
  }
  // A TypeError or ReferenceError is a bug in kvmsh, not an answer: said as one (the fuzz test looks for it).
  if (e instanceof TypeError || e instanceof ReferenceError) {
    return indentLines(`internal error: ${e.name}: ${e.message}`);
  }
  if (e instanceof Error) return indentLines(e.message);
  return indentLines(String(e));
}

/** An error of Deno's file API (NotFound, IsADirectory, PermissionDenied …). */
function isOsError(e: unknown): boolean {
  return e instanceof Error && Object.values(Deno.errors).some((c) => e instanceof c);
}

/** The JSON form of any error (KvmError.toJSON for kernel errors). */
export function errorJson(e: unknown): Record<string, unknown> {
  if (e instanceof KvmError || e instanceof UsageError || e instanceof CommandFailed) return e.toJSON();
  if (e instanceof Error) return { error: e.name, message: e.message };
  return { error: "Error", message: String(e) };
}

/** Lines after the first indented by two spaces (under the `error: ` line); trailing newlines dropped. */
function indentLines(s: string): string {
  return s.replace(/\s+$/, "").replace(/\r?\n/g, "\n  ");
}

/** Aligned table rows. */
export function table(rows: string[][]): string[] {
  const w: number[] = [];
  for (const r of rows) r.forEach((c, i) => (w[i] = Math.max(w[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]))).join("  ").trimEnd());
}
