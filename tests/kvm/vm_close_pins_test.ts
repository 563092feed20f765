/**
 * Vm.close() with slots that point into each other's memory. Within one VM that is no reason to
 * refuse: every slot dies with the VM fd, so close() ends all pins first and then frees the memory
 * (it used to free slot by slot, met the next slot's still-live pin, and threw with the VM fd
 * already closed: slots left in the books, memory mapped, the Kvm still listing the VM, a second
 * close() doing nothing). Another VM's live slot in the memory is refused before anything is
 * closed, every time close() is called. Anonymous memory only: runs on every host.
 */

import { deepStrictEqual as eq, ok, throws } from "node:assert/strict";
import { InUseError, Kvm, type Memslot } from "../../mod.ts";
import { fdSnapshot, kvmTest } from "../kvm_env.ts";
import { kernelHas } from "./kernel_has.ts";

const SIZE = 0x10000n;

/** The three ways one slot of a VM can point into another's memory. */
const SHARES: [string, (owner: Memslot) => bigint | import("../../mod.ts").Mapping][] = [
  ["a raw userspace_addr inside it", (o) => o.region.userspaceAddr],
  ["a raw range starting inside it and running past its end", (o) => o.region.userspaceAddr + SIZE - 0x1000n],
  ["its Mapping", (o) => o.backing!],
];

for (const [how, pointer] of SHARES) {
  kvmTest(
    `close() of a VM where a later slot points into an earlier slot's own memory (${how}): ` +
      "closes whole, frees the memory, the Kvm forgets the VM",
    () => {
      const before = fdSnapshot();
      {
        using kvm = Kvm.open();
        using vm = kvm.createVm();
        // The owner comes first in the books: close() used to free its memory while the later
        // slot's pin was still live, and threw with the VM fd already closed.
        const owner = vm.addMemslot({ slot: 0, gpa: 0n, size: SIZE });
        vm.addMemslot({ slot: 1, gpa: 0x100000n, size: 0x2000n, userspace: pointer(owner) });
        vm.createVcpu();
        const mem = owner.backing!;
        eq(mem.pins.length, 2, "both slots pin the memory");
        vm.close();
        eq([vm.open, vm.memslots, vm.vcpus, mem.mapped, mem.pins], [false, [], [], false, []]);
        eq(kvm.vms, [], "the Kvm no longer lists the VM");
        vm.close(); // a second close of a VM closed whole does nothing (nor does `using`'s)
      }
      eq(fdSnapshot(), before, "no fd left");
    },
  );
}

kvmTest(
  "close() of a VM whose slot memory another VM's slot points into (raw): refused up front, every time; nothing closed",
  () => {
    const before = fdSnapshot();
    {
      using kvm = Kvm.open();
      const vm0 = kvm.createVm();
      const vm1 = kvm.createVm();
      const s = vm0.addMemslot({ slot: 0, gpa: 0n, size: SIZE });
      const mem = s.backing!;
      vm0.createVcpu();
      vm1.addMemslot({ slot: 6, gpa: 0n, size: 0x1000n, userspace: mem.address + 0x3000n });
      for (const attempt of ["first", "second"]) {
        throws(() => vm0.close(), (e: unknown) => {
          if (!(e instanceof InUseError)) return false;
          eq(e.message, "slot 0 memory backs slot 6 of vm1; delete the slot first");
          eq([e.vm, e.slots], ["vm1", [6]]);
          return true;
        }, `the ${attempt} close() is refused`);
        ok(vm0.open, "the VM is still open");
        eq([vm0.memslot(0), vm0.vcpus.length, mem.mapped], [s, 1, true], "its slot, vCPU and memory are intact");
        kernelHas(vm0, s);
        eq(kvm.vms, [vm0, vm1]);
      }
      vm1.deleteMemslot(6);
      vm0.close();
      eq([vm0.open, mem.mapped, kvm.vms], [false, false, [vm1]]);
      vm1.close();
    }
    eq(fdSnapshot(), before, "no fd left");
  },
);

kvmTest("Kvm.close() with one VM's raw slot in another VM's memory closes the borrower first, then the owner", () => {
  const before = fdSnapshot();
  const kvm = Kvm.open();
  const vm0 = kvm.createVm();
  const vm1 = kvm.createVm();
  const mem = vm0.addMemslot({ slot: 0, gpa: 0n, size: SIZE }).backing!;
  vm1.addMemslot({ slot: 0, gpa: 0n, size: 0x2000n, userspace: mem.address });
  kvm.close();
  eq([vm0.open, vm1.open, kvm.open, mem.mapped, kvm.vms], [false, false, false, false, []]);
  eq(fdSnapshot(), before, "no fd left");
});
