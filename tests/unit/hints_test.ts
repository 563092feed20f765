/**
 * Hints fitted to what was sent: KVM_SET_USER_MEMORY_REGION(2)'s EINVAL names what is wrong with
 * a plain slot (alignment, a userspace range outside user space, slot id, address space, a change
 * KVM does not make to a live slot, a range past 2^64 or the host's maximum GPA) and speaks of
 * guest_memfd only for a guest-memfd slot — and there, where KVM_CAP_GUEST_MEMFD is 0, says this
 * kernel has none only where /dev/kvm answers 0 (a VM's 0 beside /dev/kvm's 1: this VM type takes
 * none), with the same words `caps`, the gmem create warning and the ENOTTY hint use. A delete
 * (size 0) gets the field checks too; "no memslot N" only where kvmsh has no slot N. A fault on
 * the fault-safe path speaks of the mapping's protection first (SIGSEGV, for any mapping), then of
 * SIGSEGV for anonymous memory, of private pages and SIGBUS only for a guest_memfd; the shell's
 * error line names the signal the hint decided. No KVM needed.
 */

import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { CAP, describeCapValue, gmemAbsence, hintFor, MemoryFaultError, type Vm } from "../../mod.ts";
import { faultCause, faultHint, memslotHint } from "../../kvm/hints.ts";
import { ERRNO } from "../../ffi/errno.ts";
import { errorLine } from "../../shell/output.ts";
import { gmemCapWarnings } from "../../shell/commands/gmem_caps.ts";

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
  // KVM refuses gpa + size < gpa in u64: a sum of exactly 2^64 (wrapping to 0) too.
  eq(
    hintFor(REGION2, "EINVAL", args({ gpa: 0xfffffffffffff000n, size: 0x1000n })),
    "guest_phys_addr 0xfffffffffffff000 + memory_size 0x1000 wraps past 2^64",
  );
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
  ok(h?.includes("the GPA range below the host's maximum guest physical address (MAXPHYADDR)"), h);
  noGmemWords(h);
});

Deno.test("memslot EINVAL, plain slot: a GPA range past any x86 host's maximum GPA is named; below 2^52 it is not", () => {
  eq(
    hintFor(REGION2, "EINVAL", args({ gpa: 1n << 56n, size: 0x1000n })),
    "the GPA range 0x100000000000000+0x1000 ends above 2^52, past any x86 host's maximum guest physical address " +
      "(MAXPHYADDR, at most 52 bits: kvm_mmu_max_gfn)",
  );
  ok(hintFor(REGION2, "EINVAL", args({ gpa: (1n << 52n) - 0x1000n, size: 0x2000n }))?.includes("above 2^52"));
  eq(hintFor(REGION2, "EINVAL", args({ gpa: (1n << 52n) - 0x1000n, size: 0x1000n })), plainRules(), "ends at 2^52");
  // A wrap is said once, not as a range past the maximum GPA as well.
  ok(!hintFor(REGION2, "EINVAL", args({ gpa: 0xfffffffffffff000n, size: 0x1000n }))?.includes("2^52"));
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
  const noCap = memslotHint("EINVAL", gmem, { gmemCap: 0, gmemSystemCap: 0 });
  eq(
    noCap,
    "this kernel has no guest_memfd (KVM_CAP_GUEST_MEMFD=0): it refuses the guest-memfd flag; a slot here is plain " +
      "host memory (no guest-memfd flag, no guest_memfd)",
  );
  eq(memslotHint("EINVAL", gmem, { gmemSystemCap: 0 }), noCap, "/dev/kvm's 0 alone decides");
  const cap = memslotHint("EINVAL", gmem, { gmemCap: 1, gmemSystemCap: 1 });
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

Deno.test("memslot EINVAL, guest-memfd flag, KVM_CAP_GUEST_MEMFD 0 on the VM: the kernel has none only where /dev/kvm says 0", () => {
  const gmem = args({ flags: "guest-memfd", gmem_fd: 7 });
  // An older kernel (before 6.18) answers 0 on a default VM and 1 on /dev/kvm: it has guest_memfd.
  const vmType = memslotHint("EINVAL", gmem, { gmemCap: 0, gmemSystemCap: 1 });
  eq(
    vmType,
    "this VM type takes no guest_memfd, though the kernel has it (KVM_CAP_GUEST_MEMFD=0 on the VM, 1 on /dev/kvm; " +
      "a VM type with private memory — sw-protected, snp, tdx — takes one): this VM refuses the guest-memfd flag; " +
      "a slot here is plain host memory (no guest-memfd flag, no guest_memfd)",
  );
  ok(!vmType.includes("this kernel has no guest_memfd"), vmType);
  // Only the VM's answer known: either, and how to tell.
  const either = memslotHint("EINVAL", gmem, { gmemCap: 0 });
  ok(
    either.startsWith("this kernel has no guest_memfd, or this VM type takes none (KVM_CAP_GUEST_MEMFD=0 on the VM; "),
    either,
  );
  ok(either.includes("/dev/kvm's answer tells which"), either);
});

Deno.test("KVM_CAP_GUEST_MEMFD 0: caps, the gmem create warning, the ENOTTY and memslot hints say it from one decision", () => {
  const kernel = gmemAbsence({ system: 0, vm: 0 })!;
  eq(kernel.kind, "kernel");
  eq(kernel.reason, "this kernel has no guest_memfd (KVM_CAP_GUEST_MEMFD=0)");
  eq(hintFor("KVM_CREATE_GUEST_MEMFD", "ENOTTY"), kernel.reason);
  ok(memslotHint("EINVAL", args({ flags: "guest-memfd" }), { gmemCap: 0, gmemSystemCap: 0 }).startsWith(kernel.reason));
  eq(gmemAbsence({ system: 1, vm: 0 })?.kind, "vm-type");
  eq(gmemAbsence({ vm: 0 })?.kind, "unknown");
  eq(gmemAbsence({ system: 1, vm: 1 }), undefined);
  eq(gmemAbsence({ system: 1 }), undefined);

  // caps: a value is decoded beside the system fd's answer; omitted, the value is the system fd's own.
  const NOTE = "no guest_memfd: KVM_CREATE_GUEST_MEMFD will answer ENOTTY";
  eq(describeCapValue(CAP.GUEST_MEMFD, 0), `0 (${NOTE})`);
  eq(describeCapValue(CAP.GUEST_MEMFD, 0, 0), `0 (${NOTE})`);
  const vmType = describeCapValue(CAP.GUEST_MEMFD, 0, 1);
  eq(
    vmType,
    "0 (not for this VM type: the kernel has guest_memfd (1 on /dev/kvm), a guest-memfd slot of this VM type is " +
      "refused)",
  );
  ok(!vmType.includes("ENOTTY"), "the ioctl exists where /dev/kvm says 1");
  ok(describeCapValue(CAP.GUEST_MEMFD, 0, null).startsWith("0 (no guest_memfd for this VM: /dev/kvm's"));
  eq(describeCapValue(CAP.GUEST_MEMFD, 1, 1), "1");
  eq(describeCapValue(CAP.GUEST_MEMFD, 1), "1");

  // The gmem create warning, from a VM's and /dev/kvm's answers.
  const vm = (system: number, vmCap: number) =>
    ({
      typeName: "default",
      checkExtension: () => vmCap,
      kvm: { checkExtension: () => system },
      supportedGmemFlags: () => 0n,
    }) as unknown as Vm;
  eq(gmemCapWarnings(vm(0, 0), "vm0", 0n), [
    "warning: KVM_CAP_GUEST_MEMFD=0 on vm0 (default VM): this kernel has no guest_memfd; sending anyway",
  ]);
  eq(gmemCapWarnings(vm(1, 0), "vm0", 0n), [
    "warning: KVM_CAP_GUEST_MEMFD=0 on vm0 (default VM): this VM type takes no guest_memfd, though the kernel has " +
    "it (KVM_CAP_GUEST_MEMFD=1 on /dev/kvm); sending anyway",
  ]);
  eq(gmemCapWarnings(vm(1, 1), "vm0", 0n), []);
});

Deno.test("memslot EINVAL for a delete (size 0): the fields KVM checks first; 'no memslot N' only where kvmsh has none", () => {
  const del = (over: Record<string, unknown> = {}) => args({ size: 0n, userspace_addr: 0n, ...over });
  // Without kvmsh's books (hintFor, a replay): hedged.
  eq(
    hintFor(REGION2, "EINVAL", del({ slot: 77 })),
    "there is no memslot 77 to delete, or KVM refused a field kvmsh does not check (size 0 deletes a slot; KVM " +
      "answers EINVAL for one that does not exist)",
  );
  // The books read, no slot 77 there.
  eq(
    memslotHint("EINVAL", del({ slot: 77 }), { overlaps: [] }),
    "there is no memslot 77 to delete (size 0 deletes a slot; KVM answers EINVAL for one that does not exist)",
  );
  // A live slot 1: KVM refused a field before it looked the slot up.
  const live = { gpa: 1n << 32n, size: 0x1000n, userspaceAddr: UADDR, flags: 0n };
  const books = { live, overlaps: [] };
  eq(memslotHint("EINVAL", del({ gpa: 0x1001n }), books), "guest_phys_addr 0x1001 is not page aligned");
  ok(memslotHint("EINVAL", del({ flags: 0x8n }), books).startsWith("flags 0x8 are no KVM_MEM_* flag"));
  eq(
    memslotHint("EINVAL", del({ slot: 0x10001 }), { overlaps: [] }),
    "slot 0x10001 is in address space 1 (bits 16..31), which exists only where KVM_CAP_MULTI_ADDRESS_SPACE is " +
      "above 1 (x86 with SMM: 2)",
  );
  eq(
    memslotHint("EINVAL", del({ flags: "guest-memfd" }), { ...books, gmemCap: 0, gmemSystemCap: 0 }),
    memslotHint("EINVAL", args({ flags: "guest-memfd" }), { gmemCap: 0, gmemSystemCap: 0 }),
    "the guest-memfd flag is checked first on a delete as well",
  );
  for (const over of [{ gpa: 0x1001n }, { flags: 0x8n }, {}]) {
    const h = memslotHint("EINVAL", del(over), books);
    ok(!h.includes("no memslot"), `slot 1 is live: ${h}`);
    // The live-slot rules are for a change, not a delete (a delete of a live slot needs no same size).
    ok(!h.includes("deleted first"), h);
  }
  const fine = memslotHint("EINVAL", del(), books);
  ok(fine.startsWith("slot 1 is live in kvmsh's books (GPA 0x100000000+0x1000)"), fine);
  // A delete has no range: no wrap, no maximum GPA.
  ok(!memslotHint("EINVAL", del({ gpa: 1n << 56n }), { overlaps: [] }).includes("2^52"));
});

Deno.test("EEXIST: names the slot in the way when known", () => {
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
});

Deno.test("fault hint: the protection first, for any mapping; guest_memfd and SIGBUS only for a gmem", () => {
  // A guest_memfd mapped read-only, written: the protection, SIGSEGV — not private pages, not SIGBUS.
  const ro = faultCause("write", { source: "gmem0+0x2000", prot: "r" });
  eq(ro, {
    signal: "SIGSEGV",
    text: "guest_memfd memory (gmem0+0x2000) mapped prot r: the host may not write it (a real access would SIGSEGV, " +
      "not SIGBUS); map it rw, or mprotect it",
  });
  eq(hintFor("process_vm_writev", "EFAULT", { source: "gmem0+0x2000", prot: "r" }), ro.text);
  eq(faultCause("read", { source: "gmem0", prot: "r" }).signal, "SIGBUS", "a read of a readable gmem page");
  // A vCPU's kvm_run: no guest_memfd words, no signal claimed unless the protection says one.
  const run = faultCause("read", { source: "vcpu0.kvm_run", prot: "rw" });
  eq(run.signal, undefined);
  ok(!/guest_memfd|SIGBUS|SIGSEGV/.test(run.text), run.text);
  ok(run.text.startsWith("vcpu0.kvm_run cannot be read by the host here"), run.text);
  eq(faultCause("write", { source: "vcpu0.kvm_run", prot: "r" }).signal, "SIGSEGV");
  // No source at all: both causes, no signal claimed.
  const unknown = faultCause("read", {});
  eq(unknown.signal, undefined);
  ok(unknown.text.includes("SIGBUS") && unknown.text.includes("SIGSEGV"), unknown.text);
  eq(hintFor("process_vm_readv", "EFAULT"), unknown.text);
});

Deno.test("errorLine names the signal faultCause decides (one decision), or none where it decides none", () => {
  const line = (syscall: string, args: Record<string, unknown>) =>
    errorLine(new MemoryFaultError(syscall, ERRNO.EFAULT, { offset: 0n, length: 4n, ...args }, 0n));
  const cases: [string, Record<string, unknown>][] = [
    ["process_vm_readv", { source: "gmem1" }],
    ["process_vm_readv", { source: "anon" }],
    ["process_vm_writev", { source: "gmem0+0x2000", prot: "r" }],
    ["process_vm_readv", { source: "gmem0", prot: "none" }],
    ["process_vm_readv", { source: "vcpu0.kvm_run", prot: "rw" }],
    ["process_vm_writev", { source: "vcpu0.kvm_run" }],
  ];
  for (const [syscall, a] of cases) {
    const { signal } = faultCause(syscall === "process_vm_readv" ? "read" : "write", a);
    const l = line(syscall, a);
    if (signal) ok(l.startsWith(`EFAULT: would ${signal} — ${syscall}: EFAULT`), l);
    else ok(l.startsWith(`${syscall}: EFAULT`) && !/would SIG/.test(l), l);
  }
  ok(line("process_vm_writev", { source: "gmem0+0x2000", prot: "r" }).startsWith("EFAULT: would SIGSEGV"));
  ok(line("process_vm_readv", { source: "vcpu0.kvm_run", prot: "rw" }).startsWith("process_vm_readv: EFAULT"));
});
