/**
 * Deleting a memslot whose own anonymous memory another live slot still points into (a raw
 * userspace_addr inside it, or another VM given that mapping) is refused before the ioctl, with
 * an InUseError naming the slots that pin it: the slot stays in the kernel and in kvmsh's books,
 * its memory stays mapped and owned. (It was deleted from both, then the unmap threw: the call
 * failed, the slot was gone anyway and its memory stayed mapped with no owner.) Vm.close()
 * refuses the same case up front; deleting the pinning slot first works. Anonymous memory only:
 * runs on every host.
 */

import { deepStrictEqual as eq, ok, throws } from "node:assert/strict";
import { InUseError, Kvm, KvmError, type Memslot, type Vm } from "../../mod.ts";
import { fdSnapshot, kvmTest } from "../kvm_env.ts";

const G4 = 1n << 32n;
const SIZE = 2n << 20n;

/** Proves the kernel still has `s`: a new slot over its GPA range is EEXIST (an overlap). */
function kernelHas(vm: Vm, s: Memslot): void {
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

kvmTest(
  "deleteMemslot of a slot whose memory a raw userspace_addr of another slot points into: refused, nothing changed",
  () => {
    const before = fdSnapshot();
    {
      using kvm = Kvm.open();
      using vm = kvm.createVm();
      const s0 = vm.addMemslot({ slot: 0, gpa: G4, size: SIZE });
      const mem = s0.backing!;
      vm.writeGuest(G4 + 0x10n, new Uint8Array([0x5a]));
      vm.addMemslot({ slot: 4, gpa: 2n * G4, size: SIZE / 2n, userspace: mem.address + SIZE / 2n });
      throws(() => vm.deleteMemslot(0), (e: unknown) => {
        if (!(e instanceof InUseError)) return false;
        eq(e.message, `slot 0 memory backs slot 4 of ${vm.name}; delete the slot first`);
        eq([e.vm, e.slots], [vm.name, [4]]);
        return true;
      });
      eq(vm.memslot(0), s0, "slot 0 is still in kvmsh's books");
      kernelHas(vm, s0);
      ok(mem.mapped, "its memory is still mapped");
      eq(mem.pins, [[vm.name, 0], [vm.name, 4]], "and still pinned by both slots");
      eq([...vm.readGuest(G4 + 0x10n, 1)], [0x5a], "and still the slot's memory");
      // The other way round works: the pinning slot first, then the owner, which frees its memory.
      vm.deleteMemslot(4);
      vm.deleteMemslot(0);
      eq([vm.memslots, mem.mapped], [[], false]);
    }
    eq(fdSnapshot(), before, "no fd left");
  },
);

kvmTest("deleteMemslot of a slot whose memory backs another VM's slot: refused, naming that VM; no leak", () => {
  const before = fdSnapshot();
  {
    using kvm = Kvm.open();
    const vm0 = kvm.createVm();
    const vm1 = kvm.createVm();
    const s = vm0.addMemslot({ slot: 0, gpa: 0n, size: SIZE });
    const m = s.backing!;
    vm1.addMemslot({ slot: 3, gpa: G4, size: SIZE, userspace: m });
    vm1.addMemslot({ slot: 5, gpa: 2n * G4, size: SIZE, userspace: m });
    throws(() => vm0.deleteMemslot(0), (e: unknown) => {
      if (!(e instanceof InUseError)) return false;
      eq(e.message, "slot 0 memory backs slots 3, 5 of vm1; delete the slots first");
      eq([e.vm, e.slots], ["vm1", [3, 5]]);
      return true;
    });
    eq(vm0.memslot(0), s, "vm0's slot 0 is still in kvmsh's books");
    kernelHas(vm0, s);
    ok(m.mapped, "the memory is still mapped (and still vm0's to free)");
    vm1.deleteMemslot(3);
    vm1.deleteMemslot(5);
    vm0.deleteMemslot(0);
    ok(!m.mapped, "the owner's delete freed it once nothing else pointed into it");
    vm1.close();
    vm0.close();
  }
  eq(fdSnapshot(), before, "no fd left");
});

kvmTest("addMemslot with size 0 (KVM's delete) of a pinned slot: refused the same way, nothing changed", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const s0 = vm.addMemslot({ slot: 2, gpa: G4, size: SIZE });
  const mem = s0.backing!;
  vm.addMemslot({ slot: 7, gpa: 2n * G4, size: 4096n, userspace: mem.address });
  throws(() => vm.addMemslot({ slot: 2, gpa: G4, size: 0n }), (e: unknown) => {
    if (!(e instanceof InUseError)) return false;
    eq(e.message, `slot 2 memory backs slot 7 of ${vm.name}; delete the slot first`);
    return true;
  });
  eq(vm.memslot(2), s0);
  kernelHas(vm, s0);
  ok(mem.mapped);
  vm.deleteMemslot(7);
  vm.addMemslot({ slot: 2, gpa: G4, size: 0n });
  eq([vm.memslots, mem.mapped], [[], false]);
});

kvmTest("deleteMemslot of a slot over a caller's mapping others share is not refused (the slot frees nothing)", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const s0 = vm.addMemslot({ slot: 0, gpa: G4, size: SIZE });
  const mem = s0.backing!;
  // Slot 1 is given slot 0's memory as a Mapping: it does not own it, so deleting it frees nothing.
  vm.addMemslot({ slot: 1, gpa: 2n * G4, size: SIZE, userspace: mem });
  vm.deleteMemslot(1);
  eq([vm.memslots.map((s) => s.id), mem.mapped, mem.pins], [[0], true, [[vm.name, 0]]]);
});
