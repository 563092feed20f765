/**
 * A runGuest whose new main memory cannot be made leaves the VM as it was: the main slot of the
 * run before (runGuest's own), its memory and what the guest left in it, and runGuest's claim on
 * it, so the next run reuses it. Two ways to fail: KVM_CREATE_GUEST_MEMFD refused (a host without
 * guest_memfd: ENOTTY; it used to delete the old slot and free its memory first), and the kernel
 * refusing the new slot itself (EINVAL for a memory size that is not page aligned, on every host:
 * the old slot is put back with its memory). And two refusals before anything is made: a vCPU of
 * another VM, and (where the host has guest_memfd) a gmem main slot whose guest_memfd a user's slot
 * still points into (closing it after the swap would throw with the VM already changed).
 */

import { deepStrictEqual as eq, ok, throws } from "node:assert/strict";
import { Kvm, KvmError, type Memslot, type Vm } from "../../mod.ts";
import { InUseError } from "../../kvm/errors.ts";
import { ownMemory, runGuest } from "../../kvm/run_guest.ts";
import { gmemTest, kvmTest, noGmemTest } from "../kvm_env.ts";

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

kvmTest("runGuest with a vCPU of another VM and other memory asked: refused before the main slot is replaced", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  using other = kvm.createVm();
  const a = runGuest(vm, { asm: LONG_MARK, timeoutMs: 5000 });
  const before = vm.memslots;
  throws(
    () => runGuest(vm, { asm: LONG_MARK, memorySize: 8n * MIB, vcpu: other.createVcpu(), timeoutMs: 5000 }),
    (e: unknown) => e instanceof RangeError && /belongs to vm1, not to vm0/.test(e.message),
  );
  asItWas(vm, a.memslot, "after the refusal");
  eq(vm.memslots, before, "every slot as it was");
  eq(other.memslots, [], "nothing made on the vCPU's VM");
});

gmemTest(
  "runGuest replacing its gmem main memory while a user slot points into that gmem's mapping: InUseError up front",
  () => {
    using kvm = Kvm.open();
    using vm = kvm.createVm();
    const a = runGuest(vm, { asm: LONG_MARK, memory: "gmem:mmap,init-shared", timeoutMs: 5000 });
    const g = ownMemory(vm).gmems[0];
    ok(g && a.memslot.gmem === g, "the main slot binds runGuest's gmem");
    vm.addMemslot({ slot: 7, gpa: 1n << 32n, size: 0x1000n, userspace: g.mapping() });
    const before = vm.memslots;
    for (const memory of ["anon", undefined] as const) {
      throws(() => runGuest(vm, { asm: LONG_MARK, memory, timeoutMs: 5000 }), (e: unknown) => {
        ok(e instanceof InUseError, String(e));
        eq([e.vm, e.slots], [vm.name, [7]]);
        ok(e.message.includes(g.name), e.message);
        return true;
      });
      asItWas(vm, a.memslot, `memory ${memory}`);
      eq(vm.memslots, before, "every slot as it was");
      ok(g.open, "the gmem is open");
      eq(ownMemory(vm).gmems, [g], "and still runGuest's");
      eq(vm.gmems, [g], "no gmem made");
    }
    // Once the user's slot is gone the run replaces the memory and closes the gmem.
    vm.deleteMemslot(7);
    const b = runGuest(vm, { asm: LONG_MARK, timeoutMs: 5000 });
    eq([b.exitCode?.value, b.memslot.gmem], [0, undefined]);
    ok(!g.open, "the replaced slot's gmem is closed");
  },
  "mmap,init-shared",
);
