/**
 * KTAP v1 output (Documentation/dev-tools/ktap.rst) in kselftest's dialect: `KTAP version 1`,
 * `1..N`, `ok N name`, `not ok N name # reason`, `ok N name # SKIP reason`, `ok N name # XFAIL reason`,
 * `not ok N name # ERROR interrupted …`; nested tests indented two spaces, starting with their own
 * version line (and `# Subtest: name`, which kunit's parser uses to find a subtest's end).
 *
 * Results are printed as they become known. A scenario's number of result lines is known only when
 * it ends, and KTAP puts a plan only right after the version line ("Plan lines follow version
 * lines") but lets it be omitted "where the number of tests is not known in advance": a scenario's
 * subtest therefore has no plan line. Files and scenarios are counted before they run, so their
 * levels have plans.
 * @module
 */

import { formatKmsg } from "../kvm/kmsg.ts";
import type { CapRead, ResultLine, ScenarioReport, Status, Totals } from "./result.ts";

/** A description as KTAP allows it: no `#`, no newline. */
export function ktapName(s: string): string {
  return s.replace(/#/g, "no.").replace(/[\r\n]+/g, " ").trim() || "(unnamed)";
}

/** Diagnostic data after `#`: one line. */
function ktapReason(s: string): string {
  return s.replace(/[\r\n]+/g, " ").trim();
}

/** `ok 3 name # SKIP reason` and friends. */
export function resultLine(n: number, name: string, status: Status, reason?: string): string {
  const r = reason ? ktapReason(reason) : "";
  const base = `${status === "fail" || status === "interrupted" ? "not ok" : "ok"} ${n} ${ktapName(name)}`;
  switch (status) {
    case "pass":
      return r ? `${base} # ${r}` : base;
    case "fail":
      return r ? `${base} # ${r}` : base;
    case "skip":
      return `${base} # SKIP${r ? ` ${r}` : ""}`;
    case "xfail":
      return `${base} # XFAIL${r ? ` ${r}` : ""}`;
    case "xpass":
      return `${base} # XPASS${r ? ` ${r}` : ""}`;
    case "interrupted":
      return `${base} # ERROR ${r || "interrupted"}`;
  }
}

/** `# line` diagnostics, one per line of text. */
export function diag(text: string): string[] {
  return text.split("\n").map((l) => (l ? `# ${l}` : "#"));
}

/** Indents lines by `depth` KTAP levels (two spaces each). */
export function indent(lines: string[], depth: number): string[] {
  const pad = "  ".repeat(depth);
  return lines.map((l) => pad + l);
}

/** `# caps read: GUEST_MEMFD=1 …` (nothing when none were read). */
export function capsLine(caps: readonly CapRead[]): string[] {
  if (caps.length === 0) return [];
  return [`# caps read: ${caps.map((c) => `${c.cap}${c.scope === "vm" ? "(vm)" : ""}=${c.value}`).join(" ")}`];
}

/** A subtest's opening lines: `KTAP version 1`, `# Subtest: name` (no plan: see the module doc). */
export function subtestHead(name: string): string[] {
  return ["KTAP version 1", `# Subtest: ${ktapName(name)}`];
}

/** The closing diagnostics of a scenario: the caps it read and the kernel log records printed during it. */
export function scenarioTrailer(s: Pick<ScenarioReport, "caps" | "kmsg">): string[] {
  const out = capsLine(s.caps);
  if (s.kmsg.length) {
    out.push(`# kernel log: ${s.kmsg.length} record(s) during the scenario`);
    for (const r of s.kmsg) out.push(...diag(`kmsg: ${formatKmsg(r)}`));
  }
  return out;
}

/**
 * The lines of a finished scenario as one subtest (what the streaming runner printed, in one
 * piece): head, each result with its diagnostics, trailer. A scenario without results (skipped
 * before its first) has none: its parent line says why.
 */
export function scenarioLines(s: ScenarioReport): string[] {
  if (s.lines.length === 0) return [];
  const out = subtestHead(s.name);
  s.lines.forEach((l: ResultLine, i) => {
    out.push(...l.diag.flatMap(diag));
    out.push(resultLine(i + 1, l.name, l.status, l.reason));
  });
  out.push(...scenarioTrailer(s));
  return out;
}

/** The host header: kernel, vendor module and parameters, KVM API version, a default VM's key caps. */
export interface HostHeader {
  kernel: string;
  vendor: string;
  apiVersion: number | string;
  /** `GUEST_MEMFD=1, GUEST_MEMFD_FLAGS=3 (mmap|init-shared), …` (absent without KVM). */
  caps?: string;
}

/** Header lines (`# kernel: …`). */
export function headerLines(h: HostHeader): string[] {
  const lines = [`# kernel: ${h.kernel}`, `# vendor module: ${h.vendor}`, `# KVM API version: ${h.apiVersion}`];
  if (h.caps) lines.push(`# default VM caps: ${h.caps}`);
  return lines;
}

/** kselftest's closing line. */
export function totalsLine(t: Totals): string {
  return `# Totals: pass:${t.pass} fail:${t.fail} xfail:${t.xfail} xpass:${t.xpass} skip:${t.skip} error:${
    t.error + t.interrupted
  }${t.interrupted ? ` (interrupted:${t.interrupted})` : ""}`;
}
