/**
 * Proves the kernel still has memslot `s`: a new slot over its GPA range is refused with EEXIST
 * (an overlap). Shared by the memslot pin and close tests.
 * @module
 */

import { throws } from "node:assert/strict";
import { KvmError, type Memslot, type Vm } from "../../mod.ts";

/** Throws unless KVM still has `s` (a slot 99 over its range answers EEXIST). */
export function kernelHas(vm: Vm, s: Memslot): void {
  throws(
    () =>
      vm.setUserMemoryRegion2({
        slot: 99,
        flags: 0n,
        guestPhysAddr: s.gpa,
        memorySize: 4096n,
        userspaceAddr: s.region.userspaceAddr,
        guestMemfdOffset: 0n,
        guestMemfd: 0,
      }),
    (e: unknown) => e instanceof KvmError && e.errnoName === "EEXIST",
    `slot ${s.id} is still in the kernel (a slot over its range overlaps it)`,
  );
}
