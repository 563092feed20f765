/**
 * Hints fitted to what was sent: KVM_SET_USER_MEMORY_REGION(2)'s EINVAL names what is wrong with
 * a plain slot (alignment, a userspace range outside user space, slot id, address space, a change
 * KVM does not make to a live slot) and speaks of guest_memfd only for a guest-memfd slot — and
 * there, where KVM_CAP_GUEST_MEMFD is 0, says this kernel has none. A fault on the fault-safe path
 * speaks of protection and SIGSEGV for anonymous memory, of private pages and SIGBUS for a
 * guest_memfd. No KVM needed.
 */

import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { hintFor } from "../../mod.ts";
import { faultHint, memslotHint } from "../../kvm/hints.ts";

const UADDR = 0x7f0000000000n;
/** The args Vm.setUserMemoryRegion2 shows, for a plain 2 MiB slot 1 at 4 GiB. */
function args(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    slot: 1,
    flags: "0",
    gpa: 1n << 32n,
    size: 2n << 20n,
    userspace_addr: UADDR,
    gmem_fd: 0,
    gmem_offset: 0n,
    ...over,
  };
}
const REGION2 = "KVM_SET_USER_MEMORY_REGION2";

function noGmemWords(h: string | undefined): void {
  ok(h !== undefined);
  ok(!/gmem|guest_memfd|guest-memfd/.test(h), `a plain slot's hint speaks of guest_memfd: ${h}`);
}

Deno.test("memslot EINVAL, plain slot: each misaligned field is named, nothing about guest_memfd", () => {
  const gpa = hintFor(REGION2, "EINVAL", args({ gpa: (1n << 32n) + 1n }));
  eq(gpa, "guest_phys_addr 0x100000001 is not page aligned");
  eq(hintFor(REGION2, "EINVAL", args({ size: 0x1001n })), "memory_size 0x1001 is not page aligned");
  eq(
    hintFor(REGION2, "EINVAL", args({ userspace_addr: UADDR + 0x10n, gpa: 0x1000n + 1n })),
    "guest_phys_addr 0x1001 is not page aligned; userspace_addr 0x7f0000000010 is not page aligned",
  );
  // A gmem offset is no concern of a plain slot (KVM ignores it there).
  noGmemWords(hintFor(REGION2, "EINVAL", args({ gmem_offset: 3n })));
});

Deno.test("memslot EINVAL, plain slot: a userspace range past user space, a wrap, too many pages, slot id, address space", () => {
  const top = hintFor(REGION2, "EINVAL", args({ userspace_addr: 0x800000000000n, size: 0x1000n }));
  ok(
    top?.startsWith("userspace_addr 0x800000000000 + memory_size ends at 0x800000001000, above the top of user space"),
  );
  ok(top?.includes("canonical"), top);
  noGmemWords(top);
  ok(hintFor(REGION2, "EINVAL", args({ userspace_addr: 0x7ffffffff000n, size: 0x1000n }))?.includes("above the top"));
  eq(hintFor(REGION2, "EINVAL", args({ userspace_addr: 0n })), plainRules(), "userspace_addr 0 is allowed");
  ok(hintFor(REGION2, "EINVAL", args({ gpa: 0xfffffffffffff000n, size: 0x2000n }))?.includes("wraps past 2^64"));
  ok(hintFor(REGION2, "EINVAL", args({ size: 1n << 44n, userspace_addr: 0x100000000n }))?.includes("2^31-1 pages"));
  eq(
    hintFor(REGION2, "EINVAL", args({ slot: 32764 })),
    "slot id 32764 (bits 0..15) is not below KVM_CAP_NR_MEMSLOTS (32764 on x86)",
  );
  ok(hintFor(REGION2, "EINVAL", args({ slot: 0x10001 }))?.includes("address space 1 (bits 16..31)"));
  ok(hintFor(REGION2, "EINVAL", args({ flags: "log-dirty|0x8" }))?.startsWith("flags 0x8 are no KVM_MEM_* flag"));
});

function plainRules(): string | undefined {
  return hintFor(REGION2, "EINVAL", args());
}

Deno.test("memslot EINVAL, plain slot, nothing to point at: the plain rules, not the guest_memfd ones", () => {
  const h = plainRules();
  ok(h?.startsWith("a plain slot: KVM wants guest_phys_addr, memory_size and userspace_addr page aligned"), h);
  noGmemWords(h);
});

Deno.test("memslot EINVAL with the VM's books: a live slot KVM does not resize, re-address or re-flag readonly", () => {
  const live = { gpa: 1n << 32n, size: 0x1000n, userspaceAddr: UADDR, flags: 0n };
  eq(
    memslotHint("EINVAL", args(), { live }),
    "slot 1 is live (GPA 0x100000000+0x1000): KVM only moves a live slot or changes its log-dirty flag, so a new " +
      "size (it has 0x1000) needs the slot deleted first",
  );
  const both = memslotHint("EINVAL", args({ flags: "readonly" }), {
    live: { ...live, userspaceAddr: UADDR + 0x1000n },
  });
  ok(both.includes("a new size (it has 0x1000), userspace_addr (it has 0x7f0000001000) and readonly flag need"), both);
});

Deno.test("memslot EINVAL, guest-memfd slot: the guest_memfd rules; with KVM_CAP_GUEST_MEMFD=0, that there is none", () => {
  const gmem = args({ flags: "guest-memfd", gmem_fd: 7 });
  const h = hintFor(REGION2, "EINVAL", gmem);
  ok(h?.startsWith("a guest-memfd slot: check alignment of GPA/size/offset"), h);
  ok(h?.includes("KVM_CAP_GUEST_MEMFD=0"), "without the cap, both are said");
  const noCap = memslotHint("EINVAL", gmem, { gmemCap: 0 });
  ok(noCap.startsWith("this kernel has no guest_memfd (KVM_CAP_GUEST_MEMFD=0)"), noCap);
  const cap = memslotHint("EINVAL", gmem, { gmemCap: 1 });
  ok(cap.startsWith("a guest-memfd slot") && !cap.includes("KVM_CAP_GUEST_MEMFD=0"), cap);
  eq(
    hintFor(REGION2, "EINVAL", args({ flags: "readonly|guest-memfd" })),
    "a guest-memfd slot takes no readonly (KVM has no read-only or dirty-logged guest_memfd memory)",
  );
  eq(
    hintFor(REGION2, "EINVAL", args({ flags: "guest-memfd", gmem_offset: 0x10n })),
    "guest_memfd_offset 0x10 is not page aligned",
  );
  ok(
    hintFor("KVM_SET_USER_MEMORY_REGION", "EINVAL", args({ flags: "guest-memfd" }))?.includes("legacy ioctl"),
    "the legacy ioctl never takes the flag",
  );
});

Deno.test("memslot EINVAL for a delete, and EEXIST: unchanged rules; EEXIST names the slot in the way when known", () => {
  eq(
    hintFor(REGION2, "EINVAL", args({ size: 0n, slot: 77 })),
    "there is no memslot 77 to delete (size 0 deletes a slot; KVM answers EINVAL for one that does not exist)",
  );
  eq(hintFor(REGION2, "EEXIST", args()), "the GPA range overlaps another memslot");
  eq(
    memslotHint("EEXIST", args(), { overlaps: [{ slot: 4, gpa: 1n << 32n, size: 0x1000n }] }),
    "the GPA range 0x100000000+0x200000 overlaps another memslot: slot 4 (GPA 0x100000000+0x1000)",
  );
});

Deno.test("fault hint: anonymous memory speaks of its protection and SIGSEGV, a guest_memfd of private pages and SIGBUS", () => {
  const none = faultHint("read", { source: "anon", prot: "none" });
  eq(
    none,
    "anonymous memory mapped prot none: the host may not read it (a real access would SIGSEGV, not SIGBUS); map it r or rw, or mprotect it",
  );
  ok(
    faultHint("write", { source: "anon", prot: "r" }).startsWith(
      "anonymous memory mapped prot r: the host may not write it",
    ),
  );
  ok(faultHint("read", { source: "anon", prot: "rw" }).includes("unmapped or re-protected behind kvmsh's back"));
  for (
    const h of [none, faultHint("read", { source: "anon" }), hintFor("process_vm_writev", "EFAULT", { source: "anon" })]
  ) {
    ok(h && !/guest_memfd|would SIGBUS/.test(h) && h.includes("would SIGSEGV"), h);
  }
  const gmem = faultHint("read", { source: "gmem1+0x2000", prot: "rw" });
  ok(gmem.includes("private guest_memfd memory") && gmem.includes("SIGBUS"), gmem);
  eq(hintFor("process_vm_readv", "EFAULT", { source: "gmem0" }), gmem);
  eq(hintFor("process_vm_readv", "EFAULT"), gmem, "with no source, what it always said");
});
