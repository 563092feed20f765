/**
 * Deleting a memslot whose own anonymous memory another live slot still points into (a raw
 * userspace_addr inside it, or another VM given that mapping) is refused before the ioctl, with
 * an InUseError naming the slots that pin it: the slot stays in the kernel and in kvmsh's books,
 * its memory stays mapped and owned. (It was deleted from both, then the unmap threw: the call
 * failed, the slot was gone anyway and its memory stayed mapped with no owner.) Vm.close()
 * refuses the same case up front; deleting the pinning slot first works.
 *
 * Any overlap counts, not only a range held whole: a raw range that starts inside the memory and
 * runs past its end, and a raw address of another VM of the same Kvm (both used to pass the check,
 * and the memory was freed under a live slot). deleteMemslot, replaceMemslot and addMemslot on a
 * live slot decide alike. Where the new slot itself keeps the old slot's memory (its Mapping, or a
 * raw address inside it: a KVM move by address), that memory passes on to the new slot, which
 * frees it when it goes. Anonymous memory only: runs on every host.
 */

import { deepStrictEqual as eq, ok, throws } from "node:assert/strict";
import { InUseError, Kvm, type Memslot, type MemslotSpec, type Vm } from "../../mod.ts";
import { fdSnapshot, kvmTest } from "../kvm_env.ts";
import { kernelHas } from "./kernel_has.ts";

const G4 = 1n << 32n;
const SIZE = 2n << 20n;

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

/** The three calls that release a live slot's own memory, each asked to drop slot `id`. */
const RELEASES: [string, (vm: Vm, s: Memslot) => void][] = [
  ["deleteMemslot", (vm, s) => vm.deleteMemslot(s.id)],
  ["replaceMemslot (fresh memory)", (vm, s) => void vm.replaceMemslot(s.id, { slot: s.id, gpa: 8n * G4, size: SIZE })],
  ["addMemslot of size 0", (vm, s) => void vm.addMemslot({ slot: s.id, gpa: s.gpa, size: 0n })],
];

for (const [call, release] of RELEASES) {
  kvmTest(`${call} of a slot whose memory another VM's raw userspace_addr points into: refused, naming that VM`, () => {
    const before = fdSnapshot();
    {
      using kvm = Kvm.open();
      using vm0 = kvm.createVm();
      using vm1 = kvm.createVm();
      const s = vm0.addMemslot({ slot: 0, gpa: G4, size: SIZE });
      const mem = s.backing!;
      vm0.writeGuest(G4, new Uint8Array([0xa5]));
      vm1.addMemslot({ slot: 2, gpa: 0n, size: 0x1000n, userspace: mem.address + 0x1000n });
      throws(() => release(vm0, s), (e: unknown) => {
        if (!(e instanceof InUseError)) return false;
        eq(e.message, "slot 0 memory backs slot 2 of vm1; delete the slot first");
        eq([e.vm, e.slots], ["vm1", [2]]);
        return true;
      });
      eq([vm0.memslot(0), mem.mapped, [...vm0.readGuest(G4, 1)]], [s, true, [0xa5]], "nothing changed");
      kernelHas(vm0, s);
      vm1.deleteMemslot(2);
      release(vm0, s);
      ok(!mem.mapped, "freed once the other VM's slot is gone");
    }
    eq(fdSnapshot(), before, "no fd left");
  });

  for (
    const [where, at] of [["starts inside it and runs past its end", SIZE - 0x1000n], ["starts before it", -0x1000n]]
  ) {
    kvmTest(`${call} of a slot whose memory a raw range ${where} overlaps: refused the same way`, () => {
      using kvm = Kvm.open();
      using vm = kvm.createVm();
      const s = vm.addMemslot({ slot: 1, gpa: G4, size: SIZE });
      const mem = s.backing!;
      vm.addMemslot({ slot: 5, gpa: 2n * G4, size: 0x2000n, userspace: mem.address + (at as bigint) });
      throws(() => release(vm, s), (e: unknown) => {
        if (!(e instanceof InUseError)) return false;
        eq(e.message, `slot 1 memory backs slot 5 of ${vm.name}; delete the slot first`);
        return true;
      });
      eq([vm.memslot(1), mem.mapped], [s, true]);
      kernelHas(vm, s);
      vm.deleteMemslot(5);
      release(vm, s);
      ok(!mem.mapped);
    });
  }
}

/** The ways a new slot keeps the old slot's own memory: given the Mapping, or a raw address inside it. */
const KEEPS: [string, (old: Memslot) => Pick<MemslotSpec, "userspace" | "size">, bigint][] = [
  ["its Mapping", (o) => ({ userspace: o.backing!, size: SIZE }), 0n],
  ["a raw address at its start", (o) => ({ userspace: o.region.userspaceAddr, size: SIZE }), 0n],
  [
    "a raw address inside it (a smaller slot)",
    (o) => ({ userspace: o.region.userspaceAddr + 0x1000n, size: 0x2000n }),
    0x1000n,
  ],
];

for (const [how, keep, offset] of KEEPS) {
  for (const id of [0, 3]) {
    kvmTest(
      `replaceMemslot(0, slot ${id}) keeping the old slot's memory (${how}): the new slot owns it and frees it; ` +
        "another slot in it refuses nothing",
      () => {
        const before = fdSnapshot();
        {
          using kvm = Kvm.open();
          using vm = kvm.createVm();
          const old = vm.addMemslot({ slot: 0, gpa: G4, size: SIZE });
          const mem = old.backing!;
          vm.writeGuest(G4 + offset, new Uint8Array([1, 2, 3]));
          // Another slot pointing into it: the memory is not freed by this call, so that is no refusal.
          vm.addMemslot({ slot: 7, gpa: 3n * G4, size: 0x1000n, userspace: mem.address });
          const s = vm.replaceMemslot(0, { slot: id, gpa: 2n * G4, ...keep(old) });
          eq([s.backing, s.backingOffset, s.ownsBacking, mem.mapped], [mem, offset, true, true]);
          eq([...vm.readGuest(2n * G4, 3)], [1, 2, 3], "the same memory at the new GPA");
          eq(vm.memslots.map((x) => x.id), id === 0 ? [0, 7] : [3, 7]);
          throws(() => vm.deleteMemslot(id), InUseError, "its new owner's delete is refused while slot 7 is in it");
          vm.deleteMemslot(7);
          vm.deleteMemslot(id);
          eq([vm.memslots, mem.mapped], [[], false], "the new owner freed it");
        }
        eq(fdSnapshot(), before, "no fd left");
      },
    );
  }
}

kvmTest("addMemslot moving a live slot by its raw userspace_addr (KVM's move) keeps its memory, owned", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const old = vm.addMemslot({ slot: 0, gpa: G4, size: SIZE });
  const mem = old.backing!;
  vm.writeGuest(G4, new Uint8Array([7, 7]));
  const s = vm.addMemslot({ slot: 0, gpa: 2n * G4, size: SIZE, userspace: old.region.userspaceAddr });
  eq([s.backing, s.ownsBacking, mem.mapped, mem.pins], [mem, true, true, [[vm.name, 0]]]);
  eq([...vm.readGuest(2n * G4, 2)], [7, 7]);
  vm.deleteMemslot(0);
  ok(!mem.mapped);
});

kvmTest("a new slot whose raw range runs past the old slot's own memory: RangeError, nothing sent or changed", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const old = vm.addMemslot({ slot: 0, gpa: G4, size: SIZE });
  const mem = old.backing!;
  const spec = { slot: 0, gpa: 2n * G4, size: SIZE, userspace: mem.address + 0x1000n };
  for (const f of [() => vm.replaceMemslot(0, spec), () => vm.addMemslot(spec)]) {
    throws(f, (e: unknown) => e instanceof RangeError && /runs past slot 0's own memory/.test(e.message));
    eq([vm.memslot(0), mem.mapped, mem.pins], [old, true, [[vm.name, 0]]]);
    kernelHas(vm, old);
  }
});

kvmTest(
  "addMemslot of size 0 given the slot's own Mapping deletes the slot and frees its memory (no owner left)",
  () => {
    using kvm = Kvm.open();
    using vm = kvm.createVm();
    const old = vm.addMemslot({ slot: 0, gpa: G4, size: SIZE });
    const mem = old.backing!;
    vm.addMemslot({ slot: 0, gpa: G4, size: 0n, userspace: mem });
    eq([vm.memslots, mem.mapped], [[], false]);
  },
);
