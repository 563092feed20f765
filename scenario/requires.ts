/**
 * Requirements: what a scenario or step needs from the host. Each is checked against the live
 * kernel; one the host lacks skips with a reason that names what was asked and what was found.
 * @module
 */

import { CAP, capName, resolveCap } from "../kvm/abi.ts";
import { GUEST_MEMFD_FLAGS, VM_TYPES } from "../kvm/abi.ts";
import { Kvm } from "../kvm/kvm.ts";
import { KvmError } from "../kvm/errors.ts";
import { kernelRelease, moduleInfo, vendorModules } from "../kvm/host.ts";
import { currentContext } from "./registry.ts";
import type { ScenarioContext } from "./context.ts";

/**
 * One thing a scenario needs:
 * - `{ cap: "GUEST_MEMFD", min?: 1, vm?: true }`: KVM_CHECK_EXTENSION ≥ min (on a default VM with `vm`);
 * - `{ gmemFlags: "mmap,init-shared" }`: every flag in KVM_CAP_GUEST_MEMFD_FLAGS of a VM (of `vmType`);
 * - `{ vmType: "sw-protected" }`: a VM type KVM_CAP_VM_TYPES lists;
 * - `{ kernel: "6.18" }`: kernel release ≥;
 * - `{ module: "kvm_intel" }` (or a list of alternatives): a vendor module loaded.
 */
export type Requirement =
  | { cap: string | number; min?: number; vm?: boolean }
  | { gmemFlags: string; vmType?: string }
  | { vmType: string }
  | { kernel: string }
  | { module: string | string[] };

/** `6.18.44-foo` → [6, 18, 44]. */
export function parseRelease(text: string): number[] {
  const m = text.match(/^(\d+)(?:\.(\d+))?(?:\.(\d+))?/);
  if (!m) return [];
  return [m[1], m[2] ?? "0", m[3] ?? "0"].map(Number);
}

/** True when release `have` ≥ `want` (both `a.b[.c]`). */
export function releaseAtLeast(have: string, want: string): boolean {
  const h = parseRelease(have);
  const w = parseRelease(want);
  for (let i = 0; i < 3; i++) {
    if ((h[i] ?? 0) !== (w[i] ?? 0)) return (h[i] ?? 0) > (w[i] ?? 0);
  }
  return true;
}

function vmTypeNumber(name: string): number {
  const t = Object.hasOwn(VM_TYPES, name) ? VM_TYPES[name] : undefined;
  if (t === undefined) throw new RangeError(`unknown VM type '${name}' (known: ${Object.keys(VM_TYPES).join(", ")})`);
  return t;
}

/** Why `req` is not met on this host, or undefined when it is. `kvm` answers the KVM questions. */
export function unmet(req: Requirement, kvm: () => Kvm): string | undefined {
  if ("cap" in req) {
    const cap = typeof req.cap === "number" ? req.cap : resolveCap(req.cap);
    if (cap === undefined) throw new RangeError(`unknown capability '${req.cap}'`);
    const min = req.min ?? 1;
    let v: number;
    if (req.vm) {
      using vm = kvm().createVm();
      v = vm.checkExtension(cap);
    } else v = kvm().checkExtension(cap);
    return v >= min ? undefined : `${capName(cap)} is ${v}${req.vm ? " on a default VM" : ""} (need ≥ ${min})`;
  }
  if ("gmemFlags" in req) {
    const want = GUEST_MEMFD_FLAGS.parse(req.gmemFlags);
    const type = req.vmType ?? "default";
    if (kvm().checkExtension(CAP.GUEST_MEMFD) === 0) return "KVM_CAP_GUEST_MEMFD is 0";
    let have: bigint;
    try {
      using vm = kvm().createVm(vmTypeNumber(type));
      have = vm.supportedGmemFlags();
    } catch (e) {
      if (e instanceof KvmError) return `cannot create a ${type} VM (${e.errnoName})`;
      throw e;
    }
    const missing = want & ~have;
    return missing === 0n
      ? undefined
      : `KVM_CAP_GUEST_MEMFD_FLAGS on a ${type} VM is ${GUEST_MEMFD_FLAGS.format(have) || "0"}: no ${
        GUEST_MEMFD_FLAGS.format(missing)
      }`;
  }
  if ("vmType" in req) {
    const t = vmTypeNumber(req.vmType);
    const types = kvm().vmTypes();
    return (types >> t) & 1 ? undefined : `VM type ${req.vmType} not in KVM_CAP_VM_TYPES (0x${types.toString(16)})`;
  }
  if ("kernel" in req) {
    const have = kernelRelease();
    return releaseAtLeast(have, req.kernel) ? undefined : `kernel ${have} is older than ${req.kernel}`;
  }
  const names = Array.isArray(req.module) ? req.module : [req.module];
  if (names.some((n) => moduleInfo(n) !== undefined)) return undefined;
  const loaded = vendorModules().map((m) => m.name).join(", ") || "none";
  return `needs module ${names.join(" or ")} (vendor module loaded: ${loaded})`;
}

/** Checks requirements for context `t`; throws a skip with every unmet reason. */
export function checkRequirements(t: ScenarioContext, reqs: readonly Requirement[]): void {
  const reasons = reqs.map((r) => unmet(r, () => t.kvm)).filter((r): r is string => r !== undefined);
  if (reasons.length) t.skip(reasons.join("; "));
}

/**
 * Skips the current step (or the scenario, before its first step) unless the host meets every
 * requirement: `requires({ cap: "GUEST_MEMFD" }, { gmemFlags: "mmap" })`.
 */
export function requires(...reqs: Requirement[]): void {
  checkRequirements(currentContext(), reqs);
}

/** True when the host meets every requirement (no skip): for branching on host features. */
export function hostHas(...reqs: Requirement[]): boolean {
  const t = currentContext();
  return reqs.every((r) => unmet(r, () => t.kvm) === undefined);
}
