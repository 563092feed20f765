/**
 * Shared test helpers: skip tests that need /dev/kvm on a host without it (with the reason),
 * fresh Kvm/VM per test, and fd-leak accounting.
 * @module
 */

import { Kvm, KvmError } from "../mod.ts";
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
