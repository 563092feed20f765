/**
 * A runGuest whose new main memory cannot be made leaves the VM as it was: the main slot of the
 * run before (runGuest's own), its memory and what the guest left in it, and runGuest's claim on
 * it, so the next run reuses it. Two ways to fail: KVM_CREATE_GUEST_MEMFD refused (a host without
 * guest_memfd: ENOTTY; it used to delete the old slot and free its memory first), and the kernel
 * refusing the new slot itself (EINVAL for a memory size that is not page aligned, on every host:
 * the old slot is put back with its memory).
 */

import { deepStrictEqual as eq, ok, throws } from "node:assert/strict";
import { Kvm, KvmError, type Memslot, type Vm } from "../../mod.ts";
import { ownMemory, runGuest } from "../../kvm/run_guest.ts";
import { kvmTest, noGmemTest } from "../kvm_env.ts";

const MIB = 1n << 20n;
const MARK = 0x300000n;
/** Stores 0x5c at MARK, exits with the byte it found there before. */
const LONG_MARK = "movzbl 0x300000, %eax; movb $0x5c, 0x300000; out %al, $0xf4";

/** The VM still has `slot` as runGuest's main memory, with the guest's mark in it. */
function asItWas(vm: Vm, slot: Memslot, what: string): void {
  eq(vm.memslot(slot.id), slot, `${what}: the old main slot is in kvmsh's books`);
  ok(slot.backing?.mapped, `${what}: its memory is mapped`);
  eq([...vm.readGuest(MARK, 1)], [0x5c], `${what}: with what the guest stored`);
  ok(ownMemory(vm).slots.includes(slot), `${what}: and it is still runGuest's own`);
  // The kernel has it too: a slot over its range is an overlap.
  throws(
    () =>
      vm.setUserMemoryRegion2({
        slot: 99,
        flags: 0n,
        guestPhysAddr: 0n,
        memorySize: 4096n,
        userspaceAddr: slot.region.userspaceAddr,
        guestMemfdOffset: 0n,
        guestMemfd: 0,
      }),
    (e: unknown) => e instanceof KvmError && e.errnoName === "EEXIST",
    `${what}: the kernel still has the slot`,
  );
}

noGmemTest(
  "runGuest with gmem memory after an anonymous run, where the kernel has no guest_memfd: ENOTTY, the VM as it was",
  () => {
    using kvm = Kvm.open();
    using vm = kvm.createVm();
    const a = runGuest(vm, { asm: LONG_MARK, timeoutMs: 5000 });
    eq(a.exitCode?.value, 0);
    for (const memory of ["gmem:mmap,init-shared", "gmem"] as const) {
      throws(() => runGuest(vm, { asm: LONG_MARK, memory, timeoutMs: 5000 }), (e: unknown) => {
        ok(e instanceof KvmError, String(e));
        eq([e.op, e.errnoName], ["KVM_CREATE_GUEST_MEMFD", "ENOTTY"]);
        return true;
      });
      asItWas(vm, a.memslot, memory);
      eq(vm.gmems, [], "no gmem left behind");
    }
    // The next plain run finds its memory where it was.
    const b = runGuest(vm, { asm: LONG_MARK, timeoutMs: 5000 });
    eq(b.memslot, a.memslot);
    eq(b.exitCode?.value, 0x5c, "the guest read what the first run stored");
  },
);

kvmTest("runGuest whose new main slot the kernel refuses (size not page aligned): the old slot is put back", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const a = runGuest(vm, { asm: LONG_MARK, timeoutMs: 5000 });
  const before = vm.memslots;
  throws(
    () => runGuest(vm, { asm: LONG_MARK, memorySize: 4n * MIB + 1n, timeoutMs: 5000 }),
    (e: unknown) => {
      ok(e instanceof KvmError, String(e));
      eq([e.op, e.errnoName], ["KVM_SET_USER_MEMORY_REGION2", "EINVAL"]);
      return true;
    },
  );
  asItWas(vm, a.memslot, "after the EINVAL");
  eq(vm.memslots, before, "every slot as it was");
  eq(a.memslot.backing?.pins, [[vm.name, a.memslot.id]], "the memory is pinned by the slot again");
  const b = runGuest(vm, { asm: LONG_MARK, timeoutMs: 5000 });
  eq([b.memslot, b.exitCode?.value], [a.memslot, 0x5c]);
  // A size that works replaces it, and frees the old memory then.
  const c = runGuest(vm, { asm: LONG_MARK, memorySize: 8n * MIB, timeoutMs: 5000 });
  eq([c.memslot.size, c.exitCode?.value], [8n * MIB, 0]);
  ok(!a.memslot.backing?.mapped, "the replaced slot's memory is released");
});
