/**
 * runGuest's main memory across runs on one VM: it tracks the slot it made itself and replaces
 * it when a later run needs other memory (mode, size, anon/gmem); a slot the user made is never
 * reused by id or overwritten — runGuest takes a free id and a layout clear of it, or throws a
 * MainMemoryError naming the slot and what to do. The gmem runs are skipped, with the reason, on a
 * host whose KVM cannot make an mmap|init-shared guest_memfd; the anonymous counterparts run
 * everywhere, and where there is no guest_memfd a gmem run is checked to fail with the reason.
 */

import { deepStrictEqual as eq, ok, throws } from "node:assert/strict";
import { Kvm, KvmError, MainMemoryError, type Memslot, type Vm } from "../../mod.ts";
import { mainMemory, ownMemory, PD_SLOT_GPA, runGuest } from "../../kvm/run_guest.ts";
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
  vm.deleteMemslot(3);
  // runGuest's own memory, made as small as asked: the advice is the size asked for.
  throws(
    () => runGuest(vm, { asm: LONG_EXIT_9, mode: "long", memorySize: MIB }),
    why([/^no memslot covers GPA 0x100000\b/, /runGuest's own/, /memorySize/]),
  );
  const r = runGuest(vm, { asm: LONG_EXIT_9, mode: "long", timeoutMs: 5000 });
  eq(r.exitCode?.value, 9);
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
