/**
 * Lifetimes of what backs a live memslot: a guest_memfd bound to a slot (or whose mapping is a
 * slot's userspace_addr) and a Mapping that is a slot's userspace_addr cannot be closed/unmapped
 * while the slot lives (else the slot points at host memory a later mmap reuses, and the guest
 * writes into it); deleting the slot first works, and closing the VM closes everything. A refused
 * addMemslot leaves no mapping behind. The guest_memfd tests are skipped, with the reason, on a
 * host whose KVM has none; each has a counterpart over anonymous memory that runs everywhere.
 */

import { deepStrictEqual as eq, ok, throws } from "node:assert/strict";
import { InUseError, Kvm, KvmError, Mapping } from "../../mod.ts";
import { runGuest } from "../../kvm/run_guest.ts";
import { fdSnapshot, gmemTest, kvmTest } from "../kvm_env.ts";

const G4 = 1n << 32n;
const SIZE = 2n << 20n;

gmemTest(
  "gmem backing a live slot (userspace gmem): close refuses, naming gmem, slot and VM; the guest's byte lands in it",
  () => {
    using kvm = Kvm.open();
    using vm = kvm.createVm();
    const g = vm.createGuestMemfd(SIZE, "mmap,init-shared");
    vm.addMemslot({ slot: 1, gpa: G4, gmem: g, size: SIZE, userspace: "gmem" });
    const m = g.mapping();
    const addr = m.address;
    throws(() => g.close(), (e: unknown) => {
      if (!(e instanceof InUseError)) return false;
      eq(e.message, `${g.name} backs slot 1 of ${vm.name}; delete the slot first`);
      eq(e.slots, [1]);
      eq(e.vm, vm.name);
      return true;
    });
    ok(g.open && m.mapped, "a refused close leaves the gmem and its mapping alive");
    // What used to go wrong: a new gmem mapped where the old one was, and the guest wrote into it.
    const g2 = vm.createGuestMemfd(SIZE, "mmap,init-shared");
    const m2 = g2.mapping();
    ok(m2.address !== addr, "the slot's memory is still mapped, so a new mapping lands elsewhere");
    const r = runGuest(vm, { asm: "mov $0x100000000, %rax; movb $0x99, (%rax); hlt", timeoutMs: 5000 });
    eq(r.exit.name, "HLT");
    eq([...g.readMem(0n, 1)], [0x99], "the guest's store went to the slot's gmem");
    eq(m2.verify(0n, SIZE, 0), undefined, "the new gmem is untouched");
    throws(() => m.unmap(), InUseError, "unmapping the gmem's mapping is refused too");
    vm.deleteMemslot(1);
    g.close();
    eq([g.open, m.mapped], [false, false]);
  },
  "mmap,init-shared",
);

gmemTest("gmem bound to a live slot with userspace_addr none: close refuses until the slot is deleted", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const g = vm.createGuestMemfd(SIZE, "mmap,init-shared");
  vm.addMemslot({ slot: 3, gpa: G4, gmem: g, size: SIZE, userspace: "none" });
  throws(() => g.close(), /gmem0 backs slot 3 of vm0; delete the slot first/);
  ok(g.open);
  vm.deleteMemslot(3);
  g.close();
  ok(!g.open);
}, "mmap,init-shared");

kvmTest(
  "a Mapping that is a live slot's userspace_addr: unmap refuses (typed, names slot and VM) until the slot goes",
  () => {
    using kvm = Kvm.open();
    using vm = kvm.createVm();
    const m = Mapping.anonymous(SIZE);
    try {
      vm.addMemslot({ slot: 2, gpa: G4, size: SIZE, userspace: m });
      throws(() => m.unmap(), (e: unknown) => {
        if (!(e instanceof InUseError)) return false;
        ok(e.message.includes(`backs slot 2 of ${vm.name}; delete the slot first`), e.message);
        return true;
      });
      ok(m.mapped);
      // Moving the slot (same memory, new GPA) keeps the pin; deleting it ends it.
      vm.addMemslot({ slot: 2, gpa: 2n * G4, size: SIZE, userspace: m });
      throws(() => m.unmap(), InUseError);
      eq(m.pins, [[vm.name, 2]]);
      vm.deleteMemslot(2);
      eq(m.pins, []);
      m.unmap();
      ok(!m.mapped);
    } finally {
      if (m.mapped) vm.close();
      if (m.mapped) m.unmap();
    }
  },
);

gmemTest("Vm.close() closes gmems and slot memory still bound to live slots, leaking no fd or mapping", () => {
  const before = fdSnapshot();
  const kvm = Kvm.open();
  const vm = kvm.createVm();
  const g = vm.createGuestMemfd(SIZE, "mmap,init-shared");
  const g2 = vm.createGuestMemfd(SIZE, "mmap,init-shared");
  vm.addMemslot({ slot: 1, gpa: G4, gmem: g, size: SIZE, userspace: "gmem" });
  vm.addMemslot({ slot: 2, gpa: G4 + SIZE, gmem: g2, size: SIZE, userspace: "none" });
  const anon = vm.addMemslot({ slot: 0, gpa: 0n, size: SIZE });
  const gm = g.mapping();
  vm.close();
  eq([g.open, g2.open, gm.mapped, anon.backing?.mapped], [false, false, false, false]);
  kvm.close();
  eq(fdSnapshot(), before);
}, "mmap,init-shared");

gmemTest("a refused addMemslot unmaps the gmem mapping it created (and keeps one that existed)", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const g = vm.createGuestMemfd(SIZE, "mmap,init-shared");
  // Misaligned GPA: the kernel says EINVAL.
  throws(() => vm.addMemslot({ slot: 1, gpa: G4 + 1n, gmem: g, size: SIZE, userspace: "gmem" }), KvmError);
  eq(g.mappings.length, 0, "the mapping made for the refused slot is gone");
  const m = g.mapping();
  throws(() => vm.addMemslot({ slot: 1, gpa: G4 + 1n, gmem: g, size: SIZE, userspace: "gmem" }), KvmError);
  eq(g.mappings, [m], "a mapping that existed before the call stays");
  ok(m.mapped);
  m.unmap();
  g.close();
}, "mmap,init-shared");

gmemTest("a raw userspace_addr inside a gmem's mapping pins that mapping too", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const g = vm.createGuestMemfd(SIZE, "mmap,init-shared");
  const m = g.mapping();
  vm.addMemslot({ slot: 4, gpa: G4, size: SIZE / 2n, userspace: m.address + SIZE / 2n });
  throws(() => g.close(), /gmem0 backs slot 4 of vm0; delete the slot first/);
  throws(() => m.unmap(), /backs slot 4 of vm0/);
  vm.deleteMemslot(4);
  g.close();
  eq([g.open, m.mapped], [false, false]);
}, "mmap,init-shared");

gmemTest("a VM whose gmem mapping backs another VM's slot refuses to close, untouched; Kvm.close closes both", () => {
  const before = fdSnapshot();
  const kvm = Kvm.open();
  const vm0 = kvm.createVm();
  const vm1 = kvm.createVm();
  const g = vm0.createGuestMemfd(SIZE, "mmap,init-shared");
  const m = g.mapping();
  vm1.addMemslot({ slot: 0, gpa: 0n, size: SIZE, userspace: m });
  throws(() => vm0.close(), (e) => e instanceof InUseError && /vm1/.test(e.message));
  eq([vm0.open, g.open, m.mapped], [true, true, true], "nothing of vm0 was closed");
  ok(kvm.vms.includes(vm0));
  kvm.close();
  eq([vm0.open, vm1.open, g.open, m.mapped], [false, false, false, false]);
  eq(fdSnapshot(), before, "no fd left (the guest_memfd included)");
}, "mmap,init-shared");

gmemTest("a guest_memfd fd is close-on-exec: no child inherits it", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  using g = vm.createGuestMemfd(SIZE, "mmap");
  const o = new Deno.Command("sh", { args: ["-c", `test -e /proc/$$/fd/${g.fd} && echo inherited || echo not`] })
    .outputSync();
  eq(new TextDecoder().decode(o.stdout).trim(), "not");
}, "mmap");

kvmTest("addMemslot with size 0 deletes the slot (KVM's way) and frees its anonymous memory", () => {
  const before = fdSnapshot();
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const s = vm.addMemslot({ slot: 3, gpa: 0n, size: SIZE });
  const mem = s.backing!;
  vm.addMemslot({ slot: 3, gpa: 0n, size: 0n });
  eq(vm.memslots.length, 0);
  eq(mem.mapped, false);
  vm.close();
  kvm.close();
  eq(fdSnapshot(), before);
});

gmemTest("a VM whose gmem backs a slot of another Kvm's VM of the same name refuses to close, whole and open", () => {
  const before = fdSnapshot();
  using kvm1 = Kvm.open();
  using kvm2 = Kvm.open();
  const a = kvm1.createVm();
  const b = kvm2.createVm();
  eq(a.name, b.name, "both Kvms count from vm0");
  const g = a.createGuestMemfd(SIZE, "mmap,init-shared");
  b.addMemslot({ slot: 0, gpa: 0n, size: SIZE, userspace: g.mapping() });
  throws(() => a.close(), (e: unknown) => e instanceof InUseError && /backs slot 0 of vm0/.test(e.message));
  ok(a.open && g.open, "nothing was closed (it was: the VM's fd, leaving the gmem open for good)");
  b.deleteMemslot(0);
  a.close();
  ok(!a.open && !g.open);
  kvm1.close();
  kvm2.close();
  eq(fdSnapshot(), before, "no fd left behind");
}, "mmap,init-shared");

kvmTest(
  "a live slot moved or re-flagged keeps its memory (KVM refuses a new userspace_addr); deleting it frees that memory",
  () => {
    using kvm = Kvm.open();
    using vm = kvm.createVm();
    const s0 = vm.addMemslot({ slot: 5, gpa: 0n, size: SIZE });
    const mem = s0.backing!;
    const flagged = vm.addMemslot({ slot: 5, gpa: 0n, size: SIZE, flags: "log-dirty" });
    eq(flagged.backing, mem, "a flags change keeps the memory (the kernel said yes)");
    const moved = vm.addMemslot({ slot: 5, gpa: G4, size: SIZE });
    eq([moved.backing, moved.region.userspaceAddr], [mem, s0.region.userspaceAddr], "a move too");
    ok(moved.ownsBacking, "the slot that allocated it still frees it");
    vm.deleteMemslot(5);
    ok(!mem.mapped, "deleting the moved slot unmapped its memory (it leaked)");
    // A different size is a new slot's memory (the kernel decides whether that is allowed).
    vm.addMemslot({ slot: 6, gpa: 0n, size: SIZE });
    throws(() => vm.addMemslot({ slot: 6, gpa: 0n, size: 2n * SIZE }), KvmError);
  },
);

// The same lifetimes over anonymous memory (no guest_memfd): they run on every host.

kvmTest(
  "anonymous memory backing a live slot: unmap refuses, naming slot and VM; the guest's byte lands in it",
  () => {
    using kvm = Kvm.open();
    using vm = kvm.createVm();
    const m = Mapping.anonymous(SIZE);
    try {
      vm.addMemslot({ slot: 1, gpa: G4, size: SIZE, userspace: m });
      const addr = m.address;
      throws(() => m.unmap(), (e: unknown) => {
        if (!(e instanceof InUseError)) return false;
        eq(e.message, `anon mapping at 0x${addr.toString(16)} backs slot 1 of ${vm.name}; delete the slot first`);
        eq([e.slots, e.vm], [[1], vm.name]);
        return true;
      });
      ok(m.mapped, "a refused unmap leaves the memory mapped");
      // What would go wrong otherwise: new memory mapped where the old was, and the guest writing into it.
      const m2 = Mapping.anonymous(SIZE);
      try {
        ok(m2.address !== addr, "the slot's memory is still mapped, so a new mapping lands elsewhere");
        const r = runGuest(vm, { asm: "mov $0x100000000, %rax; movb $0x99, (%rax); hlt", timeoutMs: 5000 });
        eq(r.exit.name, "HLT");
        eq([...m.read(0n, 1)], [0x99], "the guest's store went to the slot's memory");
        eq(m2.verify(0n, SIZE, 0), undefined, "the new mapping is untouched");
      } finally {
        m2.unmap();
      }
      vm.deleteMemslot(1);
      m.unmap();
      eq(m.mapped, false);
    } finally {
      if (m.mapped) vm.close();
      m.unmap();
    }
  },
);

kvmTest("Vm.close() releases slot memory still bound to live slots (anonymous), leaking no fd or mapping", () => {
  const before = fdSnapshot();
  const kvm = Kvm.open();
  const vm = kvm.createVm();
  const own = Mapping.anonymous(SIZE);
  const a = vm.addMemslot({ slot: 0, gpa: 0n, size: SIZE });
  const b = vm.addMemslot({ slot: 1, gpa: G4, size: SIZE, userspace: "anon" });
  const c = vm.addMemslot({ slot: 2, gpa: G4 + SIZE, size: SIZE, userspace: own });
  eq([a.ownsBacking, b.ownsBacking, c.ownsBacking], [true, true, false]);
  vm.close();
  eq([a.backing?.mapped, b.backing?.mapped], [false, false], "the slots' own memory is unmapped");
  eq([own.mapped, own.pins], [true, []], "the caller's mapping stays, no longer pinned");
  own.unmap();
  kvm.close();
  eq(fdSnapshot(), before);
});

kvmTest("a refused addMemslot unmaps the anonymous memory it made (and keeps a caller's mapping)", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const made: Mapping[] = [];
  const anonymous = Mapping.anonymous;
  Mapping.anonymous = (size, prot) => {
    const m = anonymous(size, prot);
    made.push(m);
    return m;
  };
  let own: Mapping | undefined;
  try {
    // Misaligned GPA: the kernel says EINVAL.
    throws(() => vm.addMemslot({ slot: 1, gpa: G4 + 1n, size: SIZE }), KvmError);
    eq(made.length, 1, "addMemslot made anonymous memory for the slot");
    eq(made[0].mapped, false, "the memory made for the refused slot is gone");
    own = Mapping.anonymous(SIZE);
    throws(() => vm.addMemslot({ slot: 1, gpa: G4 + 1n, size: SIZE, userspace: own! }), KvmError);
    eq([own.mapped, own.pins], [true, []], "a mapping the caller gave stays, unpinned");
    eq(vm.memslots, []);
  } finally {
    Mapping.anonymous = anonymous;
    own?.unmap();
  }
});

kvmTest("a raw userspace_addr inside another slot's anonymous memory pins that memory too", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const s0 = vm.addMemslot({ slot: 0, gpa: G4, size: SIZE });
  const mem = s0.backing!;
  const raw = vm.addMemslot({ slot: 4, gpa: 2n * G4, size: SIZE / 2n, userspace: mem.address + SIZE / 2n });
  eq([raw.backing, raw.describe().userspace], [undefined, "raw"]);
  eq(mem.pins, [[vm.name, 0], [vm.name, 4]]);
  throws(() => mem.unmap(), /backs slots 0, 4 of vm0; delete the slots first/);
  vm.deleteMemslot(4);
  eq(mem.pins, [[vm.name, 0]]);
  vm.deleteMemslot(0);
  eq(mem.mapped, false, "the owner slot's delete released it");
});

kvmTest(
  "a VM whose slot memory backs another VM's slot refuses to close, untouched; Kvm.close closes both",
  () => {
    const before = fdSnapshot();
    const kvm = Kvm.open();
    const vm0 = kvm.createVm();
    const vm1 = kvm.createVm();
    const s = vm0.addMemslot({ slot: 0, gpa: 0n, size: SIZE });
    const m = s.backing!;
    vm1.addMemslot({ slot: 3, gpa: 0n, size: SIZE, userspace: m });
    throws(() => vm0.close(), (e: unknown) => {
      if (!(e instanceof InUseError)) return false;
      eq(e.message, "slot 0 memory backs slot 3 of vm1; delete the slot first");
      return true;
    });
    eq([vm0.open, m.mapped, vm0.memslots.map((x) => x.id)], [true, true, [0]], "nothing of vm0 was closed");
    ok(kvm.vms.includes(vm0));
    kvm.close();
    eq([vm0.open, vm1.open, m.mapped], [false, false, false]);
    eq(fdSnapshot(), before, "no fd left");
  },
);

kvmTest(
  "a VM whose slot memory backs a slot of another Kvm's VM of the same name refuses to close, whole and open",
  () => {
    const before = fdSnapshot();
    using kvm1 = Kvm.open();
    using kvm2 = Kvm.open();
    const a = kvm1.createVm();
    const b = kvm2.createVm();
    eq(a.name, b.name, "both Kvms count from vm0");
    const s = a.addMemslot({ slot: 0, gpa: 0n, size: SIZE });
    b.addMemslot({ slot: 0, gpa: 0n, size: SIZE, userspace: s.backing! });
    throws(() => a.close(), (e: unknown) => e instanceof InUseError && /backs slot 0 of vm0/.test(e.message));
    ok(a.open && s.backing!.mapped, "nothing was closed");
    b.deleteMemslot(0);
    a.close();
    ok(!a.open && !s.backing!.mapped);
    kvm1.close();
    kvm2.close();
    eq(fdSnapshot(), before, "no fd left behind");
  },
);
