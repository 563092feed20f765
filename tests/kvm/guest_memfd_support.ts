/**
 * Shared pieces of the guest_memfd integration tests: the flag sets this host supports (as
 * upstream's guest_memfd_test.c derives them from KVM_CAP_GUEST_MEMFD_FLAGS), tests gated on a
 * flag set (skipped, with the reason, where the host's KVM cannot make that guest_memfd), tests
 * of what a host WITHOUT guest_memfd answers, errno expectations, and the per-file fd-leak check.
 * @module
 */

import { deepStrictEqual, fail } from "node:assert/strict";
import { GUEST_MEMFD_FLAGS, Kvm, KvmError, type Vm } from "../../mod.ts";
import { fdSnapshot, gmemTest, KVM_SKIP_REASON, kvmTest } from "../kvm_env.ts";

/** Page size (guest_memfd sizes and offsets are multiples of it). */
export const PAGE = 4096n;
/** Upstream's gmem_test() size: four pages. */
export const TOTAL = PAGE * 4n;

/** One flag set a gmem is created with. */
export interface FlagSetCase {
  /** `none`, `mmap`, `mmap|init-shared`. */
  name: string;
  flags: bigint;
}

const MMAP = GUEST_MEMFD_FLAGS.bits.mmap;
const INIT_SHARED = GUEST_MEMFD_FLAGS.bits["init-shared"];

function probeFlags(): bigint {
  if (KVM_SKIP_REASON) return 0n;
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  return vm.supportedGmemFlags();
}

/** KVM_CAP_GUEST_MEMFD_FLAGS of a default VM on this host (0 where KVM is absent). */
export const SUPPORTED_FLAGS: bigint = probeFlags();

/**
 * The flag sets upstream tests: 0 always; MMAP when the cap has it; MMAP|INIT_SHARED when the
 * cap has INIT_SHARED.
 */
export const FLAG_SETS: readonly FlagSetCase[] = [
  { name: "none", flags: 0n },
  ...((SUPPORTED_FLAGS & MMAP) ? [{ name: "mmap", flags: MMAP }] : []),
  ...((SUPPORTED_FLAGS & INIT_SHARED) ? [{ name: "mmap|init-shared", flags: MMAP | INIT_SHARED }] : []),
];

/**
 * A test of flag set `fs` (a gmem created with `fs.flags`): ignored, with the reason, on a host
 * whose KVM cannot make that guest_memfd (tests/kvm_env.ts gmemSkipReason). FLAG_SETS always
 * lists `none`, which a host without guest_memfd cannot make either.
 */
export function flagSetTest(
  fs: FlagSetCase,
  name: string,
  fn: (t: Deno.TestContext) => void | Promise<void>,
): void {
  gmemTest(name, fn, GUEST_MEMFD_FLAGS.format(fs.flags));
}

/** Runs `fn`, which must throw a KvmError with errno `name`; returns the error. */
export function expectErrno(name: string, fn: () => unknown, what = "call"): KvmError {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof KvmError)) throw e;
    deepStrictEqual(e.errnoName, name, `${what}: expected ${name}, the kernel answered ${e.errnoName} (${e.message})`);
    return e;
  }
  fail(`${what}: expected ${name}, but the call succeeded`);
}

/** Runs `fn` with a fresh default VM on a fresh /dev/kvm fd, closing both after. */
export function onVm<T>(fn: (vm: Vm, kvm: Kvm) => T): T {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  return fn(vm, kvm);
}

/** Async {@link onVm}. */
export async function onVmAsync<T>(fn: (vm: Vm, kvm: Kvm) => Promise<T>): Promise<T> {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  return await fn(vm, kvm);
}

/**
 * Takes the fd baseline now (call at the top of a test file) and returns the function that
 * registers the file's last test: /proc/self/fd is back to that baseline. Deno runs a file's
 * tests in registration order, so call the returned function after every other test.
 */
export function startFdLeakCheck(label: string): () => void {
  const before = fdSnapshot();
  return () =>
    kvmTest(`${label}: no fd leaked (/proc/self/fd as at the start of the file)`, () => {
      deepStrictEqual(fdSnapshot(), before);
    });
}

/** {@link noGmemTest} of tests/kvm_env.ts, for the files that import their helpers from here. */
export { noGmemTest } from "../kvm_env.ts";
