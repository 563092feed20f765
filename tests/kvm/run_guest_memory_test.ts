/**
 * runGuest's main memory across runs on one VM: it tracks the slot it made itself and replaces
 * it when a later run needs other memory (mode, size, anon/gmem); a slot the user made is never
 * reused by id or overwritten — runGuest takes a free id and a layout clear of it, or throws a
 * MainMemoryError naming the slot and what to do. The gmem runs are skipped, with the reason, on a
 * host whose KVM cannot make an mmap|init-shared guest_memfd; the anonymous counterparts run
 * everywhere, and where there is no guest_memfd a gmem run is checked to fail with the reason.
 */

import { deepStrictEqual as eq, ok, throws } from "node:assert/strict";
import { CAP, Kvm, KvmError, MainMemoryError, type Memslot, type Vm } from "../../mod.ts";
import { InUseError } from "../../kvm/errors.ts";
import { Mapping } from "../../kvm/mapping.ts";
import { gmemInUse, mainMemory, ownMemory, PD_SLOT_GPA, runGuest } from "../../kvm/run_guest.ts";
import { gmemTest, kvmTest } from "../kvm_env.ts";
import { noGmemTest } from "./guest_memfd_support.ts";

const G4 = 1n << 32n;
const MIB = 1n << 20n;
/** The VM's memslots besides the page-directory slot long-mode runs keep above 512 GiB (no 1 GiB pages). */
function lowSlots(vm: Vm): Memslot[] {
  return vm.memslots.filter((s) => s.gpa !== PD_SLOT_GPA);
}

const REAL_EXIT_7 = "mov $7, %al; out %al, $0xf4";
const LONG_EXIT_9 = "mov $9, %al; out %al, $0xf4";

kvmTest("runGuest: a real-mode run then a long-mode run on one VM (the 1 MiB slot is replaced by 4 MiB)", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const a = runGuest(vm, { asm: REAL_EXIT_7, mode: "real", timeoutMs: 5000 });
  eq(a.exitCode?.value, 7);
  eq([a.memslot.id, a.memslot.size], [0, MIB]);
  const b = runGuest(vm, { asm: LONG_EXIT_9, timeoutMs: 5000 });
  eq(b.exitCode?.value, 9);
  eq([b.memslot.id, b.memslot.gpa, b.memslot.size], [0, 0n, 4n * MIB]);
  eq(lowSlots(vm).map((s) => s.id), [0]);
  ok(!a.memslot.backing?.mapped, "the replaced slot's memory is released");
  // Back to real mode: the 4 MiB slot serves it as it is.
  const c = runGuest(vm, { asm: REAL_EXIT_7, mode: "real", timeoutMs: 5000 });
  eq(c.exitCode?.value, 7);
  eq(c.memslot, b.memslot);
});

gmemTest(
  "runGuest: memory gmem:mmap,init-shared after an anonymous run gets a gmem slot (and anon after gmem frees it)",
  () => {
    using kvm = Kvm.open();
    using vm = kvm.createVm();
    const a = runGuest(vm, { asm: LONG_EXIT_9, timeoutMs: 5000 });
    eq(a.memslot.gmem, undefined);
    const b = runGuest(vm, {
      asm: "movb $0x5c, 0x200000; mov $9, %al; out %al, $0xf4",
      memory: "gmem:mmap,init-shared",
      timeoutMs: 5000,
    });
    eq(b.exitCode?.value, 9);
    ok(b.memslot.gmem, "the main slot binds a guest_memfd");
    eq(b.memslot.gmem.flagNames, "mmap|init-shared");
    eq([...b.memslot.gmem.readMem(0x200000n, 1)], [0x5c], "the guest ran on the gmem");
    eq(lowSlots(vm).length, 1);
    const g = b.memslot.gmem;
    const c = runGuest(vm, { asm: LONG_EXIT_9, memory: "anon", timeoutMs: 5000 });
    eq(c.memslot.gmem, undefined);
    ok(!g.open, "the gmem runGuest made for the replaced slot is closed");
    eq(vm.gmems, []);
  },
  "mmap,init-shared",
);

kvmTest(
  "runGuest: with the user's slot 0 at 4 GiB, a real-mode run takes a free slot id at GPA 0 and leaves slot 0 alone",
  () => {
    using kvm = Kvm.open();
    using vm = kvm.createVm();
    const user = vm.addMemslot({ slot: 0, gpa: G4, size: 2n * MIB });
    const r = runGuest(vm, { asm: REAL_EXIT_7, mode: "real", timeoutMs: 5000 });
    eq(r.exitCode?.value, 7);
    ok(r.memslot.id !== 0);
    eq(r.memslot.gpa, 0n);
    eq(vm.memslot(0), user);
    // And long mode after it: runGuest replaces its own slot, not the user's.
    const l = runGuest(vm, {
      asm: "mov $0x100000000, %rbx; movb $1, (%rbx); mov $9, %al; out %al, $0xf4",
      timeoutMs: 5000,
    });
    eq(l.exitCode?.value, 9);
    eq(vm.memslot(0), user);
    eq([...vm.readGuest(G4, 1)], [1], "the guest reached the user's slot at 4 GiB");
  },
);

kvmTest("runGuest: a user slot in the way (overlap, or the slot id asked for) is a MainMemoryError naming it", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  vm.addMemslot({ slot: 5, gpa: 2n * MIB, size: 2n * MIB });
  throws(() => runGuest(vm, { asm: LONG_EXIT_9, memory: "gmem:mmap,init-shared", memorySize: 4n * MIB }), (e) => {
    if (!(e instanceof MainMemoryError)) return false;
    eq([e.slot, e.vm], [5, vm.name]);
    ok(e.message.includes("slot 5 of vm0"), e.message);
    ok(e.message.includes("slot del 5"), e.message);
    ok(e.message.includes("new VM"), e.message);
    return true;
  });
  eq(vm.memslots.map((s) => s.id), [5], "nothing was added");
  eq(vm.gmems, [], "no gmem left behind");
  // Without an explicit size, the layout fits below the user's slot (2 MiB at GPA 0).
  const r = runGuest(vm, { asm: LONG_EXIT_9, timeoutMs: 5000 });
  eq(r.exitCode?.value, 9);
  eq([r.memslot.gpa, r.memslot.size], [0n, 2n * MIB]);
  throws(() => runGuest(vm, { asm: LONG_EXIT_9, slot: 5 }), /slot 5 of vm0/);
});

kvmTest("runGuest: the user's own memory at GPA 0 is used as main memory unless other memory is asked for", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const user = vm.addMemslot({ slot: 3, gpa: 0n, size: 4n * MIB });
  const r = runGuest(vm, { asm: LONG_EXIT_9, timeoutMs: 5000 });
  eq(r.exitCode?.value, 9);
  eq(r.memslot, user);
  throws(() => runGuest(vm, { asm: LONG_EXIT_9, memory: "gmem:mmap,init-shared" }), (e) => {
    if (!(e instanceof MainMemoryError)) return false;
    ok(e.message.includes("slot del 3"), e.message);
    return true;
  });
  eq(vm.memslot(3), user);
});

kvmTest("mainMemory made by hand is runGuest's own: a later run reuses it", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const m = mainMemory(vm, { mode: "long" });
  vm.writeGuest(0x300000n, new Uint8Array([0xab]));
  const r = runGuest(vm, { asm: "movzbl 0x300000, %eax; out %al, $0xf4", timeoutMs: 5000 });
  eq(r.memslot, m);
  eq(r.exitCode?.value, 0xab);
});

gmemTest(
  "runGuest: no `memory` means anonymous memory: a plain run after a gmem run replaces runGuest's gmem slot",
  () => {
    using kvm = Kvm.open();
    using vm = kvm.createVm();
    const a = runGuest(vm, { asm: LONG_EXIT_9, memory: "gmem:mmap,init-shared", timeoutMs: 5000 });
    const g = a.memslot.gmem;
    ok(g, "the first run's memory is a guest_memfd");
    const b = runGuest(vm, { asm: LONG_EXIT_9, timeoutMs: 5000 });
    eq(b.exitCode?.value, 9);
    eq(b.memslot.gmem, undefined, "the plain run's main memory is anonymous");
    ok(!g.open, "runGuest's gmem for the replaced slot is closed");
    eq(lowSlots(vm).length, 1);
  },
  "mmap,init-shared",
);

gmemTest("ownMemory: the slots and guest_memfd runGuest made for itself on a VM, by name", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  eq(ownMemory(vm), { slots: [], gmems: [] });
  const user = vm.createGuestMemfd(2n * MIB, "mmap");
  const a = runGuest(vm, { asm: LONG_EXIT_9, memory: "gmem:mmap,init-shared", timeoutMs: 5000 });
  const own = ownMemory(vm);
  ok(own.slots.includes(a.memslot));
  eq(own.gmems, [a.memslot.gmem]);
  eq(own.gmems.includes(user), false);
  eq(a.memslot.gmem!.name, "gmem1", "named by the Kvm's counter after the user's gmem0");
  eq(vm.createGuestMemfd(2n * MIB, "mmap").name, "gmem2", "the next user gmem does not collide");
}, "mmap,init-shared");

kvmTest("runGuest: its main slot never takes the id of its own page-directory slot (the re-size was EINVAL)", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  // A 1 MiB slot of the user's at GPA 0: a long-mode run uses it as main memory, and its
  // image at 1 MiB is outside it; the page-directory slot (if this host needs one) takes id 0.
  vm.addMemslot({ slot: 1, gpa: 0n, size: MIB });
  throws(() => runGuest(vm, { asm: LONG_EXIT_9, mode: "long" }), /no memslot covers GPA 0x100000/);
  vm.deleteMemslot(1);
  const r = runGuest(vm, { asm: LONG_EXIT_9, mode: "long" });
  eq(r.exitCode?.value, 9);
  const ids = vm.memslots.map((s) => s.id);
  eq(new Set(ids).size, ids.length, "distinct ids");
});

kvmTest("runGuest: a guest that does not fit main memory at GPA 0 names that memory and what the mode needs", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  // The user's 4 KiB slot at GPA 0 is main memory as it is; the image goes above it.
  vm.addMemslot({ slot: 3, gpa: 0n, size: 4096n });
  const why = (re: RegExp[]) => (e: unknown) => {
    ok(e instanceof RangeError, String(e));
    for (const r of re) ok(r.test(e.message), `${r} in: ${e.message}`);
    return true;
  };
  throws(
    () => runGuest(vm, { asm: REAL_EXIT_7, mode: "real" }),
    why([
      /^no memslot covers GPA 0x10000\b/,
      /slot 3 of vm0 \(GPA 0x0\+0x1000 \(4 KiB\)\)/,
      /the user's/,
      /256 KiB/,
      /slot del 3/,
    ]),
  );
  throws(
    () => runGuest(vm, { asm: LONG_EXIT_9, mode: "long" }),
    why([/^no memslot covers GPA 0x100000\b/, /slot 3 of vm0/, /2 MiB/, /slot del 3/]),
  );
  // The failed runs took back the slots they made (the page-directory slot, where the vCPU has no
  // 1 GiB pages): the user's slot is the VM's only one. The vCPU the first run made stays.
  eq(vm.memslots.map((s) => s.id), [3], "only the user's slot after the failed runs");
  eq(ownMemory(vm).slots, []);
  eq(vm.vcpus.length, 1);
  vm.deleteMemslot(3);
  // runGuest's own memory, made as small as asked: the advice is the size asked for.
  throws(
    () => runGuest(vm, { asm: LONG_EXIT_9, mode: "long", memorySize: MIB }),
    why([/^no memslot covers GPA 0x100000\b/, /runGuest's own/, /memorySize/]),
  );
  eq([vm.memslots, ownMemory(vm).slots], [[], []], "the main slot the failed run made is gone too");
  const r = runGuest(vm, { asm: LONG_EXIT_9, mode: "long", timeoutMs: 5000 });
  eq(r.exitCode?.value, 9);
  eq(r.vcpu, vm.vcpus[0], "the run used the vCPU the failed ones made");
  // A failed run that replaced runGuest's earlier main slot (same id) keeps the new one; slots
  // made by earlier runs stay.
  const before = vm.memslots;
  throws(
    () => runGuest(vm, { image: new Uint8Array(Number(3n * MIB)), mode: "long", memorySize: 2n * MIB }),
    /does not fit its memory/,
  );
  const after = vm.memslots;
  eq(after.map((s) => [s.id, s.gpa]), before.map((s) => [s.id, s.gpa]), "the same slot ids and places");
  eq(after.find((s) => s.gpa === 0n)?.size, 2n * MIB, "main memory is the replacement");
  eq(runGuest(vm, { asm: LONG_EXIT_9, mode: "long", timeoutMs: 5000 }).exitCode?.value, 9);
});

kvmTest("runGuest whose vCPU cannot be made (KVM_CREATE_VCPU refused): the slots it made are taken back", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  // The next id runGuest's vCPU would get is KVM_CAP_MAX_VCPU_ID, which the kernel refuses: a vCPU
  // at the last id, closed, leaves the VM with no vCPU and no id left above it.
  const last = vm.checkExtension(CAP.MAX_VCPU_ID) - 1;
  vm.createVcpu(last).close();
  eq(vm.vcpus, []);
  throws(() => runGuest(vm, { asm: LONG_EXIT_9, mode: "long" }), (e: unknown) => {
    ok(e instanceof KvmError, String(e));
    eq([e.op, e.errnoName], ["KVM_CREATE_VCPU", "EINVAL"]);
    return true;
  });
  eq([vm.memslots, ownMemory(vm).slots], [[], []], "no slot left behind");
  // With a vCPU given, the same VM runs the guest.
  eq(runGuest(vm, { asm: LONG_EXIT_9, mode: "long", vcpu: vm.createVcpu(0), timeoutMs: 5000 }).exitCode?.value, 9);
});

kvmTest(
  "runGuest: a guest that does not fit says what was asked: no memorySize, the slot in the way, a user slot big enough",
  () => {
    using kvm = Kvm.open();
    const why = (re: RegExp[], not: RegExp[] = []) => (e: unknown) => {
      ok(e instanceof RangeError, String(e));
      for (const r of re) ok(r.test(e.message), `${r} in: ${e.message}`);
      for (const r of not) ok(!r.test(e.message), `no ${r} in: ${e.message}`);
      return true;
    };
    // No memorySize given: the default size, and no "memorySize asked".
    {
      using vm = kvm.createVm();
      throws(
        () => runGuest(vm, { image: new Uint8Array(Number(5n * MIB)), mode: "long" }),
        why(
          [/runs past slot 0/, /runGuest's own slot 0/, /gave no memorySize/, /default for a long-mode guest/],
          [/memorySize asked/, /as small as/],
        ),
      );
    }
    // runGuest's memory made to end below the user's slot 1: that slot is named, not memorySize (a
    // larger one would overlap it).
    {
      using vm = kvm.createVm();
      vm.addMemslot({ slot: 1, gpa: 0x40000n, size: 0x1000n });
      throws(
        () => runGuest(vm, { image: new Uint8Array(0x50000), mode: "real" }),
        why([/runGuest's own slot 0/, /the user's slot 1 \(GPA 0x40000\b/, /slot del 1/, /new VM/], [/memorySize/]),
      );
      // A larger memorySize would indeed be refused: the advice not to give one holds.
      throws(() => runGuest(vm, { image: new Uint8Array(0x50000), mode: "real", memorySize: MIB }), MainMemoryError);
    }
    // The user's slot at GPA 0 is already as large as the mode needs: no "needs at least".
    {
      using vm = kvm.createVm();
      vm.addMemslot({ slot: 0, gpa: 0n, size: 4n * MIB });
      throws(
        () => runGuest(vm, { image: new Uint8Array(Number(5n * MIB)), mode: "long" }),
        why([/the user's slot 0/, /make the slot larger/], [/needs at least/, /2 MiB/]),
      );
    }
    // The range that failed is not main memory's: a user slot's end, or a GPA above a user slot.
    {
      using vm = kvm.createVm();
      vm.addMemslot({ slot: 1, gpa: 8n * MIB, size: 0x1000n });
      throws(
        () => runGuest(vm, { image: new Uint8Array(0x2000), mode: "long", loadAddress: 8n * MIB }),
        (e: unknown) =>
          e instanceof RangeError && e.message === "GPA 0x800000+0x2000 runs past slot 1 (ends at 0x801000)",
      );
      throws(
        () => runGuest(vm, { image: new Uint8Array(0x2000), mode: "long", loadAddress: 16n * MIB }),
        (e: unknown) => e instanceof RangeError && e.message === "no memslot covers GPA 0x1000000",
      );
      // An image that reaches slot 1 from main memory: slot 1 is in the way.
      throws(
        () => runGuest(vm, { image: new Uint8Array(Number(8n * MIB)), mode: "long" }),
        why([/runs past slot 0/, /the user's slot 1 \(GPA 0x800000\b/, /slot del 1/], [/memorySize/]),
      );
    }
  },
);

kvmTest("runGuest refuses a vCPU of another VM (RangeError naming both), before it makes any memory", () => {
  using kvm = Kvm.open();
  using vm0 = kvm.createVm();
  using vm1 = kvm.createVm();
  const v1 = vm1.createVcpu();
  for (const mode of ["long", "real"] as const) {
    throws(() => runGuest(vm0, { asm: "hlt", mode, vcpu: v1 }), (e: unknown) => {
      ok(e instanceof RangeError, String(e));
      ok(e.message.includes(`${v1.name} belongs to vm1, not to vm0`), e.message);
      ok(!/does not fit|memorySize/.test(e.message), e.message);
      return true;
    });
  }
  eq([vm0.memslots, ownMemory(vm0)], [[], { slots: [], gmems: [] }], "nothing made on vm0");
  // Another Kvm counts its VMs from vm0 too: the message says which is which.
  using kvm2 = Kvm.open();
  using other = kvm2.createVm();
  eq(other.name, vm0.name);
  throws(() => runGuest(vm0, { asm: "hlt", vcpu: other.createVcpu() }), /belongs to another Kvm's vm0, not to vm0/);
  // Its own vCPU runs.
  const r = runGuest(vm1, { asm: LONG_EXIT_9, vcpu: v1, timeoutMs: 5000 });
  eq([r.exitCode?.value, r.vcpu], [9, v1]);
});

kvmTest("gmemInUse: a slot other than runGuest's main slot whose memory is in the gmem's mappings holds it", () => {
  // The predicate runGuest checks before it replaces a gmem main slot, on anonymous memory
  // standing in for the gmem's mapping (it looks only at `name` and `mappings`).
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  using vm2 = kvm.createVm();
  const m = Mapping.anonymous(0x10000n);
  const fake = { name: "gmem9", mappings: [m] };
  const own = vm.addMemslot({ slot: 0, gpa: 0n, size: 0x10000n, userspace: m });
  eq(gmemInUse(vm, fake, own), undefined, "only the main slot: closing it will work");
  vm.addMemslot({ slot: 4, gpa: G4, size: 0x1000n, userspace: m });
  vm.addMemslot({ slot: 2, gpa: 2n * G4, size: 0x1000n, userspace: m.address + 0x1000n });
  const e = gmemInUse(vm, fake, own);
  ok(e instanceof InUseError, String(e));
  eq([e.vm, e.slots], [vm.name, [2, 4]]);
  ok(e.message.includes("gmem9") && e.message.includes("main slot 0 of vm0"), e.message);
  ok(e.message.includes("slots 2, 4 of vm0"), e.message);
  vm.deleteMemslot(4);
  vm.deleteMemslot(2);
  eq(gmemInUse(vm, fake, own), undefined);
  // Another VM's slot on it holds it too.
  vm2.addMemslot({ slot: 3, gpa: 0n, size: 0x1000n, userspace: m });
  const e2 = gmemInUse(vm, fake, own);
  ok(e2 instanceof InUseError, String(e2));
  eq([e2.vm, e2.slots], [vm2.name, [3]]);
  vm2.deleteMemslot(3);
  vm.deleteMemslot(0);
  eq(gmemInUse(vm, fake, own), undefined);
  m.unmap();
});

// The same questions with anonymous memory only: every host.

kvmTest("runGuest: `memory: anon` and no `memory` are the same memory: a plain run reuses the anon run's slot", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const a = runGuest(vm, { asm: LONG_EXIT_9, memory: "anon", timeoutMs: 5000 });
  eq(a.memslot.gmem, undefined);
  vm.writeGuest(0x300000n, new Uint8Array([0x5c]));
  const b = runGuest(vm, { asm: "movzbl 0x300000, %eax; out %al, $0xf4", timeoutMs: 5000 });
  eq(b.exitCode?.value, 0x5c, "the second run saw the first one's memory");
  eq(b.memslot, a.memslot, "not replaced: the same kind of memory");
  const c = runGuest(vm, { asm: LONG_EXIT_9, memory: "anon", timeoutMs: 5000 });
  eq(c.memslot, a.memslot);
  eq(lowSlots(vm).length, 1);
  eq(vm.gmems, []);
});

kvmTest("ownMemory: the anonymous slots runGuest made for itself on a VM, never the user's", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  eq(ownMemory(vm), { slots: [], gmems: [] });
  const user = vm.addMemslot({ slot: 0, gpa: G4, size: 2n * MIB });
  const a = runGuest(vm, { asm: LONG_EXIT_9, timeoutMs: 5000 });
  const own = ownMemory(vm);
  ok(own.slots.includes(a.memslot));
  eq(own.slots.includes(user), false);
  eq(own.gmems, []);
  eq(
    own.slots.map((s) => s.id),
    vm.memslots.filter((s) => s !== user).map((s) => s.id),
    "every other slot is runGuest's",
  );
  // Deleted by the user, it is no longer runGuest's.
  vm.deleteMemslot(a.memslot.id);
  eq(ownMemory(vm).slots.includes(a.memslot), false);
});

noGmemTest(
  "runGuest with gmem memory where the kernel has no guest_memfd: the ENOTTY says why, nothing is left",
  () => {
    using kvm = Kvm.open();
    using vm = kvm.createVm();
    for (const memory of ["gmem:mmap,init-shared", "gmem"] as const) {
      throws(() => runGuest(vm, { asm: LONG_EXIT_9, memory, timeoutMs: 5000 }), (e: unknown) => {
        ok(e instanceof KvmError, String(e));
        eq([e.op, e.errnoName], ["KVM_CREATE_GUEST_MEMFD", "ENOTTY"]);
        eq(e.hint, "this kernel has no guest_memfd (KVM_CAP_GUEST_MEMFD=0)");
        return true;
      });
    }
    eq([vm.memslots, vm.gmems, ownMemory(vm)], [[], [], { slots: [], gmems: [] }], "no slot or gmem left behind");
    // The same VM runs with anonymous memory.
    const r = runGuest(vm, { asm: LONG_EXIT_9, timeoutMs: 5000 });
    eq(r.exitCode?.value, 9);
    eq(r.memslot.gmem, undefined);
  },
);
