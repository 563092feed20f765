/**
 * What the kernel's refusals of a memslot look like through Vm: the hint fits what was sent and
 * what the VM has — a misaligned plain slot, a range past 2^64 or the host's maximum GPA, a change
 * KVM does not make to a live slot, an overlap naming the slot in the way — and never speaks of
 * guest_memfd for a plain slot. A refused delete (size 0) of a live slot names the field KVM
 * refused, never "no memslot"; that is said only of a slot the VM does not have. Where the
 * guest-memfd flag is sent to a kernel without guest_memfd (KVM_CAP_GUEST_MEMFD=0 on /dev/kvm), it
 * says so; where the kernel has guest_memfd, a readonly guest-memfd slot gets the guest_memfd rule.
 * A fault on anonymous memory the host may not read speaks of its protection, not guest_memfd; so
 * does a write to a guest_memfd mapped read-only.
 */

import { deepStrictEqual as eq, ok, throws } from "node:assert/strict";
import { CAP, gmemAbsence, Kvm, KvmError, Mapping, MemoryFaultError, parseProt, PROT } from "../../mod.ts";
import { gmemTest, kvmTest, noGmemTest } from "../kvm_env.ts";

const G4 = 1n << 32n;
const SIZE = 2n << 20n;

/** Expects `fn` to fail with `op`'s `errnoName` and returns the hint. */
function hintOf(fn: () => unknown, errnoName: string, op = "KVM_SET_USER_MEMORY_REGION2"): string {
  let hint: string | undefined;
  throws(fn, (e: unknown) => {
    ok(e instanceof KvmError, String(e));
    eq([e.op, e.errnoName], [op, errnoName], e.message);
    ok(e.message.endsWith(` — ${e.hint}`), "the hint is in the message");
    hint = e.hint;
    return true;
  });
  return hint!;
}

function plain(h: string): void {
  ok(!/gmem|guest_memfd|guest-memfd/.test(h), `a plain slot's hint speaks of guest_memfd: ${h}`);
}

kvmTest("a plain slot the kernel refuses (EINVAL): the hint names the misaligned field", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const h = hintOf(() => vm.addMemslot({ slot: 1, gpa: G4 + 1n, size: SIZE }), "EINVAL");
  eq(h, "guest_phys_addr 0x100000001 is not page aligned");
  const raw = hintOf(
    () =>
      vm.setUserMemoryRegion({
        slot: 1,
        flags: 0n,
        guestPhysAddr: G4,
        memorySize: 0x1000n,
        userspaceAddr: 0x800000000000n,
      }),
    "EINVAL",
    "KVM_SET_USER_MEMORY_REGION",
  );
  ok(raw.includes("above the top of user space"), raw);
  plain(raw);
  eq(vm.memslots, []);
});

kvmTest("a change KVM does not make to a live plain slot (resize, readonly): the hint says the slot is live", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const s = vm.addMemslot({ slot: 2, gpa: G4, size: SIZE });
  const ro = hintOf(() => vm.addMemslot({ slot: 2, gpa: G4, size: SIZE, flags: "readonly" }), "EINVAL");
  eq(
    ro,
    "slot 2 is live (GPA 0x100000000+0x200000): KVM only moves a live slot or changes its log-dirty flag, so a new " +
      "readonly flag needs the slot deleted first",
  );
  const resize = hintOf(() => vm.addMemslot({ slot: 2, gpa: G4, size: 2n * SIZE }), "EINVAL");
  ok(resize.startsWith("slot 2 is live"), resize);
  ok(resize.includes("a new size (it has 0x200000)"), resize);
  plain(resize);
  eq(vm.memslot(2), s, "the live slot is untouched");
});

kvmTest("an overlap (EEXIST) names the slot in the way", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  vm.addMemslot({ slot: 0, gpa: G4, size: SIZE });
  const h = hintOf(() => vm.addMemslot({ slot: 1, gpa: G4 + SIZE / 2n, size: SIZE }), "EEXIST");
  eq(h, "the GPA range 0x100100000+0x200000 overlaps another memslot: slot 0 (GPA 0x100000000+0x200000)");
});

kvmTest("a range KVM refuses: gpa + size of exactly 2^64 wraps; a GPA above 2^52 is past the host's maximum", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  eq(
    hintOf(() => vm.addMemslot({ slot: 3, gpa: (1n << 64n) - 0x1000n, size: 0x1000n }), "EINVAL"),
    "guest_phys_addr 0xfffffffffffff000 + memory_size 0x1000 wraps past 2^64",
  );
  eq(
    hintOf(() => vm.addMemslot({ slot: 3, gpa: 1n << 56n, size: 0x1000n }), "EINVAL"),
    "the GPA range 0x100000000000000+0x1000 ends above 2^52, past any x86 host's maximum guest physical address " +
      "(MAXPHYADDR, at most 52 bits: kvm_mmu_max_gfn)",
  );
  eq(vm.memslots, []);
});

kvmTest(
  "a refused delete (size 0) of a live slot names the field KVM refused; 'no memslot' only for a slot not there",
  () => {
    using kvm = Kvm.open();
    using vm = kvm.createVm();
    const s = vm.addMemslot({ slot: 0, gpa: 0n, size: 0x10000n });
    const gpa = hintOf(() => vm.addMemslot({ slot: 0, gpa: 0x1001n, size: 0n }), "EINVAL");
    eq(gpa, "guest_phys_addr 0x1001 is not page aligned");
    const flags = hintOf(() => vm.addMemslot({ slot: 0, gpa: 0n, size: 0n, flags: 0x8n }), "EINVAL");
    ok(flags.startsWith("flags 0x8 are no KVM_MEM_* flag"), flags);
    for (const h of [gpa, flags]) ok(!h.includes("no memslot"), h);
    eq(vm.memslots, [s], "slot 0 is still live");
    eq(
      hintOf(() => vm.addMemslot({ slot: 3, gpa: 0n, size: 0n }), "EINVAL"),
      "there is no memslot 3 to delete (size 0 deletes a slot; KVM answers EINVAL for one that does not exist)",
    );
  },
);

noGmemTest("the guest-memfd flag sent to a kernel without guest_memfd: EINVAL, and the hint says there is none", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  eq(kvm.checkExtension(CAP.GUEST_MEMFD), 0, "/dev/kvm says the kernel has none");
  const h = hintOf(() => vm.addMemslot({ slot: 1, gpa: G4, size: SIZE, flags: "guest-memfd" }), "EINVAL");
  // "this kernel has no guest_memfd" where Vm passes /dev/kvm's answer (gmemSystemCap); where it
  // passes only the VM's 0, the hint cannot tell the kernel from the VM type and says both. Never
  // "this VM type" alone: /dev/kvm says 0 here.
  const kernel = gmemAbsence({ system: 0 })!.reason;
  const either = gmemAbsence({ vm: 0 })!.reason;
  ok(h.startsWith(`${kernel}:`) || h.startsWith(`${either}:`), h);
  const raw = hintOf(
    () =>
      vm.setUserMemoryRegion2({
        slot: 3,
        flags: 4n,
        guestPhysAddr: G4,
        memorySize: SIZE,
        userspaceAddr: 0n,
        guestMemfdOffset: 0n,
        guestMemfd: 0,
      }),
    "EINVAL",
  );
  eq(raw, h);
  eq(vm.memslots, []);
});

gmemTest(
  "a write to a guest_memfd mapped read-only: the hint names its protection and SIGSEGV, not private pages",
  () => {
    using kvm = Kvm.open();
    using vm = kvm.createVm();
    using g = vm.createGuestMemfd(0x10000n, "mmap,init-shared");
    const m = g.mmap({ prot: PROT.READ });
    try {
      throws(() => m.write(0n, new Uint8Array([1])), (e: unknown) => {
        ok(e instanceof MemoryFaultError, String(e));
        ok(e.hint?.startsWith(`guest_memfd memory (${g.name}) mapped prot r: the host may not write it`), e.hint);
        ok(e.hint?.includes("SIGSEGV") && !e.hint.includes("private"), e.hint);
        return true;
      });
    } finally {
      m.unmap();
    }
  },
  "mmap,init-shared",
);

gmemTest("a readonly guest-memfd slot (EINVAL): the hint gives the guest_memfd rule", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  using g = vm.createGuestMemfd(SIZE);
  const h = hintOf(() => vm.addMemslot({ slot: 1, gpa: G4, size: SIZE, gmem: g, flags: "readonly" }), "EINVAL");
  eq(h, "a guest-memfd slot takes no readonly (KVM has no read-only or dirty-logged guest_memfd memory)");
});

Deno.test("a fault on anonymous memory the host may not access: the hint names its protection, not guest_memfd", () => {
  const none = Mapping.anonymous(0x10000n, parseProt("none"));
  const ro = Mapping.anonymous(0x1000n, parseProt("r"));
  try {
    throws(() => none.read(0n, 1), (e: unknown) => {
      ok(e instanceof MemoryFaultError, String(e));
      eq([e.errnoName, e.faultOffset], ["EFAULT", 0n]);
      eq(
        e.hint,
        "anonymous memory mapped prot none: the host may not read it (a real access would SIGSEGV, not SIGBUS); " +
          "map it r or rw, or mprotect it",
      );
      return true;
    });
    eq([...ro.read(0n, 1)], [0], "a read-only mapping reads");
    throws(() => ro.write(0n, new Uint8Array([1])), (e: unknown) => {
      ok(e instanceof MemoryFaultError, String(e));
      ok(e.hint?.startsWith("anonymous memory mapped prot r: the host may not write it"), e.hint);
      ok(!e.hint?.includes("guest_memfd"), e.hint);
      return true;
    });
    // The bulk path falls back to the syscall path, which says the same.
    throws(
      () => none.fill(0n, 0x10000n, 1),
      (e: unknown) => e instanceof MemoryFaultError && /prot none/.test(e.message),
    );
  } finally {
    none.unmap();
    ro.unmap();
  }
});
