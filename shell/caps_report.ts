/**
 * Prints the host report (`kvmsh caps`): kernel, vendor module with its parameters, API
 * version, VM types, and each capability with its decoded value on the system fd and a VM.
 * @module
 */

import { type CapReport, type HostReport, REPORT_CAPS, resolveCap } from "../core.ts";

/** Options of {@link formatHostReport}. */
export interface ReportOptions {
  /** Show every cap, not only the ones the host answers non-zero plus the report's key caps. */
  all?: boolean;
}

function capValue(v: number | string): string {
  return typeof v === "number" ? String(v) : v;
}

/**
 * One line per cap: `KVM_CAP_GUEST_MEMFD_FLAGS (244)  sys 3  vm 3  (mmap|init-shared)`. The
 * annotation is the parenthesised part of `decoded` (describeCapValue: a bit mask's names, or a
 * value's note, e.g. `(no guest_memfd: KVM_CREATE_GUEST_MEMFD will answer ENOTTY)` for
 * KVM_CAP_GUEST_MEMFD 0), so the text and --json (`decoded`) say the same.
 */
export function formatCapRow(c: CapReport): string {
  const decoded = c.decoded.includes("(") ? c.decoded.slice(c.decoded.indexOf("(")) : "";
  return `${`${c.name} (${c.cap})`.padEnd(44)} sys ${capValue(c.system).padEnd(10)} vm ${
    capValue(c.vm).padEnd(10)
  } ${decoded}`
    .trimEnd();
}

/** The report as text. Key caps first, then every other cap the host answers non-zero. */
export function formatHostReport(r: HostReport, opts: ReportOptions = {}): string {
  const lines: string[] = [];
  lines.push(`kernel          ${r.kernel} (${r.machine})`);
  if (r.vendor.length === 0) lines.push("vendor module   none found in /sys/module (kvm_intel, kvm_amd, kvm_pvm …)");
  for (const m of r.vendor) {
    const params = Object.entries(m.parameters).map(([k, v]) => `${k}=${v}`).join(" ");
    lines.push(`vendor module   ${m.name}${params ? `  ${params}` : ""}`);
  }
  if (r.kvm) {
    const p = Object.entries(r.kvm.parameters).map(([k, v]) => `${k}=${v}`).join(" ");
    lines.push(`kvm module      ${p}`);
  }
  lines.push(`API version     ${r.apiVersion}`);
  lines.push(`VM types        ${r.vmTypes}`);
  lines.push(
    `cap names       pinned to ${r.capsUapi} uapi; numbers above 244 may mean other things on out-of-tree kernels`,
  );
  lines.push("");
  const key = new Set(REPORT_CAPS.map((n) => resolveCap(n)));
  const first = r.caps.filter((c) => key.has(c.cap));
  const rest = r.caps.filter((c) => !key.has(c.cap) && (opts.all || c.system !== 0 || c.vm !== 0));
  lines.push("key capabilities (guest_memfd, memory attributes, …):");
  for (const c of first) lines.push(formatCapRow(c));
  if (rest.length) {
    lines.push("", opts.all ? "every other capability:" : "other capabilities this host answers non-zero:");
    for (const c of rest) lines.push(formatCapRow(c));
  }
  return lines.join("\n");
}

/** The report as JSON-ready data. */
export function hostReportJson(r: HostReport): Record<string, unknown> {
  return { ...r, caps: r.caps.map((c) => ({ ...c })) };
}
