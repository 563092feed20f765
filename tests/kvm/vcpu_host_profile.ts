/**
 * What a guest sees differs between KVM implementations. Each entry names one observable
 * outcome, keyed by the vendor module that gives it; tests assert the answer of the module
 * loaded here, and on a host whose module has no entry they report what happened instead of
 * guessing. Measured on kvm_pvm (kernel 6.18); kvm_intel/kvm_amd answers are upstream's
 * documented behaviour (guest_memfd_test.c, api.rst) and are marked as expectations to confirm.
 */

import { vendorModules } from "../../kvm/host.ts";

/** The vendor module in use (`kvm_pvm`, `kvm_intel`, `kvm_amd`) or `unknown`. */
export const VENDOR: string = vendorModules()[0]?.name ?? "unknown";

/** One host property: the outcome per vendor module. */
export type HostProperty = Partial<Record<string, string>>;

/** Host properties the vCPU tests observe, by name. */
export const HOST_PROFILE: Record<string, HostProperty> = {
  /** Long-mode guest reads a gmem slot whose userspace_addr is 0 (gmem-only slot). */
  "gmem-slot-userspace-none-long-mode": {
    kvm_pvm: "MMIO", // the guest reaches gmem only through userspace_addr
    kvm_intel: "done", // upstream: the guest reads gmem through the fd (expectation)
    kvm_amd: "done",
  },
  /** Real-mode guest fetching code from a gmem slot with userspace_addr 0. */
  "gmem-slot-userspace-none-real-mode": { kvm_pvm: "INTERNAL_ERROR", kvm_intel: "HLT", kvm_amd: "HLT" },
  /** Guest reads a gmem slot whose userspace_addr is separate anonymous memory: which bytes does it see? */
  "gmem-slot-userspace-anon-guest-sees": { kvm_pvm: "anon", kvm_intel: "gmem", kvm_amd: "gmem" },
  /** Triple fault (no IDT) in long mode. */
  "triple-fault": { kvm_pvm: "SHUTDOWN", kvm_intel: "SHUTDOWN", kvm_amd: "SHUTDOWN" },
  /** int3 with no IDT in long mode. */
  "int3-without-idt": { kvm_pvm: "INTERNAL_ERROR", kvm_intel: "SHUTDOWN", kvm_amd: "SHUTDOWN" },
  /**
   * Guest reads a memslot whose userspace memory is PROT_NONE: hardware KVM fails the hva fault
   * and reports KVM_RUN -1/EFAULT with a MEMORY_FAULT exit (kvm_handle_error_pfn); kvm_pvm's
   * shadow MMU turns the failed fault into an MMIO exit.
   */
  "memslot-prot-none-read": { kvm_pvm: "MMIO", kvm_intel: "MEMORY_FAULT", kvm_amd: "MEMORY_FAULT" },
  /**
   * Single-step (KVM_GUESTDBG_SINGLESTEP) over an `out` that exits to userspace: where the DEBUG
   * exit comes. Hardware KVM completes the OUT with kvm_skip_emulated_instruction, which reports
   * the step right after the OUT; kvm_pvm reports it only after the next instruction that does
   * not exit to userspace (so one step covers a run of OUTs and the instruction after them).
   */
  "single-step-over-out": { kvm_pvm: "after-next", kvm_intel: "after-out", kvm_amd: "after-out" },
  /**
   * Single-step over `hlt` (no in-kernel irqchip): which exit the step gives. kvm_pvm reports
   * DEBUG and the HLT exit never comes; upstream kvm_emulate_halt lets the HLT exit overwrite the
   * step's DEBUG exit (its "squashing a GUESTDBG_SINGLESTEP-triggered KVM_EXIT_DEBUG" TODO).
   */
  "single-step-over-hlt": { kvm_pvm: "DEBUG", kvm_intel: "HLT", kvm_amd: "HLT" },
  /** vmcall KVM_HC_MAP_GPA_RANGE with KVM_CAP_EXIT_HYPERCALL enabled on a default VM. */
  "map-gpa-range-hypercall": {
    kvm_pvm: "no-progress", // RIP stays on vmcall, no exit; only the watchdog stops it
    kvm_intel: "HYPERCALL",
    kvm_amd: "HYPERCALL",
  },
};

/** The expected outcome of `name` on this host, or undefined when the module has no entry. */
export function expected(name: string): string | undefined {
  const p = HOST_PROFILE[name];
  if (!p) throw new Error(`no host property '${name}'`);
  return p[VENDOR];
}

/**
 * Asserts `actual` against this host's entry; on a host without one, prints the observation
 * (a new host's answer is reported, never hidden) and passes.
 */
export function assertHost(name: string, actual: string): void {
  const want = expected(name);
  if (want === undefined) {
    console.log(`# host property ${name} on ${VENDOR}: ${actual} (no expectation recorded for this module)`);
    return;
  }
  if (want !== actual) {
    throw new Error(`host property ${name}: ${VENDOR} was expected to give ${want}, gave ${actual}`);
  }
}
