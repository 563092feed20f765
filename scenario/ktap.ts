/**
 * KTAP v1 output (Documentation/dev-tools/ktap.rst) in kselftest's dialect: `KTAP version 1`,
 * `1..N`, `ok N name`, `not ok N name # reason`, `ok N name # SKIP reason`, `ok N name # XFAIL reason`;
 * nested tests indented two spaces, starting with their own version and plan lines.
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
  const base = `${status === "fail" ? "not ok" : "ok"} ${n} ${ktapName(name)}`;
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

function capsLine(caps: readonly CapRead[]): string[] {
  if (caps.length === 0) return [];
  return [`# caps read: ${caps.map((c) => `${c.cap}${c.scope === "vm" ? "(vm)" : ""}=${c.value}`).join(" ")}`];
}

/** The lines of one scenario as a subtest: version, plan, diagnostics, one result per line. */
export function scenarioLines(s: ScenarioReport): string[] {
  const out = ["KTAP version 1", `# Subtest: ${ktapName(s.name)}`, ...capsLine(s.caps)];
  if (s.lines.length === 0) {
    out.push(`1..0${s.status === "skip" && s.reason ? ` # SKIP ${ktapReason(s.reason)}` : ""}`);
  } else {
    out.push(`1..${s.lines.length}`);
  }
  s.lines.forEach((l: ResultLine, i) => {
    out.push(...l.diag.flatMap(diag));
    out.push(resultLine(i + 1, l.name, l.status, l.reason));
  });
  if (s.kmsg.length) {
    out.push(`# kernel log: ${s.kmsg.length} record(s) during the scenario`);
    for (const r of s.kmsg) out.push(...diag(`kmsg: ${formatKmsg(r)}`));
  }
  return out;
}

/** The host header: kernel, vendor module and parameters, KVM API version. */
export interface HostHeader {
  kernel: string;
  vendor: string;
  apiVersion: number | string;
}

/** Header lines (`# kernel: …`). */
export function headerLines(h: HostHeader): string[] {
  return [`# kernel: ${h.kernel}`, `# vendor module: ${h.vendor}`, `# KVM API version: ${h.apiVersion}`];
}

/** kselftest's closing line. */
export function totalsLine(t: Totals): string {
  return `# Totals: pass:${t.pass} fail:${t.fail} xfail:${t.xfail} xpass:${t.xpass} skip:${t.skip} error:${t.error}`;
}
