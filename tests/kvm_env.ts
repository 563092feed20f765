/**
 * Shared test helpers: skip tests that need /dev/kvm on a host without it (with the reason),
 * fresh Kvm/VM per test, and fd-leak accounting.
 * @module
 */

import { CAP, gmemAbsence, GUEST_MEMFD_FLAGS, Kvm, KvmError } from "../mod.ts";
import { openFds } from "../ffi/procfs.ts";

function probe(): string | undefined {
  try {
    Kvm.open().close();
    return undefined;
  } catch (e) {
    return e instanceof KvmError ? e.message : String(e);
  }
}

/** Why KVM tests are skipped here, or undefined when /dev/kvm works. */
export const KVM_SKIP_REASON: string | undefined = probe();
if (KVM_SKIP_REASON) console.warn(`# SKIP KVM tests: ${KVM_SKIP_REASON}`);

/** A Deno test that needs /dev/kvm: ignored (reason printed once) where it cannot be opened. */
export function kvmTest(name: string, fn: (t: Deno.TestContext) => void | Promise<void>): void {
  Deno.test({ name, ignore: KVM_SKIP_REASON !== undefined, fn });
}

/**
 * Why a default VM here cannot have a guest_memfd with `flags` (names, `mmap,init-shared`), or
 * undefined when it can: KVM itself missing, KVM_CAP_GUEST_MEMFD 0, or a flag that
 * KVM_CAP_GUEST_MEMFD_FLAGS does not list. Asked of the kernel once per flag set, as upstream's
 * guest_memfd_test.c does with TEST_REQUIRE(kvm_has_cap(...)).
 */
export function gmemSkipReason(flags = ""): string | undefined {
  const key = GUEST_MEMFD_FLAGS.format(GUEST_MEMFD_FLAGS.parse(flags || "0"));
  if (gmemReasons.has(key)) return gmemReasons.get(key);
  let reason: string | undefined = KVM_SKIP_REASON;
  if (reason === undefined) {
    using kvm = Kvm.open();
    using vm = kvm.createVm();
    const want = GUEST_MEMFD_FLAGS.parse(flags || "0");
    const absent = gmemAbsence({ system: kvm.checkExtension(CAP.GUEST_MEMFD), vm: vm.checkExtension(CAP.GUEST_MEMFD) });
    if (absent) {
      reason = `a default VM has no guest_memfd: ${absent.reason}`;
    } else if ((vm.supportedGmemFlags() & want) !== want) {
      const have = GUEST_MEMFD_FLAGS.format(vm.supportedGmemFlags()) || "none";
      reason = `this host's guest_memfd lacks flags ${key} (KVM_CAP_GUEST_MEMFD_FLAGS = ${have})`;
    }
  }
  gmemReasons.set(key, reason);
  if (reason !== undefined && reason !== KVM_SKIP_REASON && !gmemWarned.has(reason)) {
    gmemWarned.add(reason);
    console.warn(`# SKIP guest_memfd tests: ${reason}`);
  }
  return reason;
}
const gmemReasons = new Map<string, string | undefined>();
const gmemWarned = new Set<string>();

/** Why tests that need any guest_memfd are skipped here (undefined: this host has one). */
export const GMEM_SKIP_REASON: string | undefined = gmemSkipReason();
/** Why tests that need an `mmap,init-shared` guest_memfd are skipped here. */
export const GMEM_MMAP_SKIP_REASON: string | undefined = gmemSkipReason("mmap,init-shared");

/**
 * A Deno test that needs a guest_memfd with `flags` (default: any guest_memfd): ignored, with
 * the reason printed once, on a host whose KVM cannot make one.
 */
export function gmemTest(
  name: string,
  fn: (t: Deno.TestContext) => void | Promise<void>,
  flags = "",
): void {
  Deno.test({ name, ignore: gmemSkipReason(flags) !== undefined, fn });
}

/**
 * A Deno test of what a host WITHOUT guest_memfd answers (ENOTTY, the warnings, the skips):
 * ignored where KVM is missing or where this host's KVM has guest_memfd (said once).
 */
export function noGmemTest(name: string, fn: (t: Deno.TestContext) => void | Promise<void>): void {
  const why = KVM_SKIP_REASON ?? noGmemKernelSkip;
  if (why !== undefined && KVM_SKIP_REASON === undefined && !noGmemWarned) {
    noGmemWarned = true;
    console.warn(`# SKIP tests of a host without guest_memfd: ${why}`);
  }
  Deno.test({ name, ignore: why !== undefined, fn });
}

/**
 * Why the no-guest_memfd tests do not apply here: they check a kernel built without it (the
 * system fd's KVM_CAP_GUEST_MEMFD 0: the create answers ENOTTY). A kernel that has it but whose
 * default VM says 0 (before 6.18) answers otherwise, and is neither their host nor gmemTest's.
 */
const noGmemKernelSkip: string | undefined = (() => {
  if (KVM_SKIP_REASON !== undefined) return undefined;
  if (GMEM_SKIP_REASON === undefined) return "this host's KVM has guest_memfd";
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const absent = gmemAbsence({ system: kvm.checkExtension(CAP.GUEST_MEMFD), vm: vm.checkExtension(CAP.GUEST_MEMFD) });
  return absent?.kind === "kernel" ? undefined : `not a kernel without guest_memfd: ${absent?.reason}`;
})();
let noGmemWarned = false;

/** Runs `fn` with an open Kvm and a fresh default VM, closing both after. */
export function withVm<T>(fn: (vm: import("../mod.ts").Vm, kvm: Kvm) => T): T {
  using kvm = Kvm.open();
  const vm = kvm.createVm();
  return fn(vm, kvm);
}

/** The open fds of this process. */
export function fdSnapshot(): number[] {
  return openFds();
}

/** Page size of this host. */
export const PAGE = 4096n;
