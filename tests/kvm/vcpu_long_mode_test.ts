/**
 * Long-mode guests on real KVM: the guest half of upstream guest_memfd_test.c
 * (test_guest_memfd_guest) with each userspace_addr choice, MMIO exits, triple fault, ucalls,
 * ELF args, inline asm, MAP_GPA_RANGE. The gmem tests are skipped, with the reason, on a host
 * whose KVM cannot make an mmap|init-shared guest_memfd; the whole-memory guest check also runs
 * over an anonymous slot at 4 GiB, everywhere.
 */

import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { gmemTest, kvmTest } from "../kvm_env.ts";
import { hex, Kvm, Mapping, PROT, type Vm } from "../../mod.ts";
import { mainMemory, runGuest } from "../../kvm/run_guest.ts";
import { type RunResult, runVcpu } from "../../kvm/run_loop.ts";
import { guestPath } from "../../kvm/loaders/library.ts";
import { formatExit } from "../../kvm/exit_decode.ts";
import { assertHost } from "./vcpu_host_profile.ts";

const GMEM_GPA = 4n << 30n; // 4 GiB, as the selftests put their test slot high
const PAGE = 4096n;
const NO_NEW_VALUE = 0x100;

const GMEM_SIZE = 2n << 20n;

/**
 * The guest of upstream test_guest_memfd_guest over the whole gmem: every byte of [rdi, rdi+rsi)
 * (rsi a multiple of 8) must be dl, then the guest writes cl over all of it and exits with code 0.
 * On the first byte that differs it stops with exit code 1, r12 = its address, r13 = the byte.
 * Quadword string instructions (repe scasq, rep stosq): this host emulates guest code at a few
 * µs per instruction, so a byte loop over 2 MiB would take ~20 s.
 */
const CHECK_THEN_FILL = `
  mov %rdi, %r8
  mov %rsi, %r9
  mov %rcx, %r11
  mov $0x0101010101010101, %rbx
  movzbq %dl, %rax
  imul %rbx, %rax
  mov %r9, %rcx
  shr $3, %rcx
  cld
  repe scasq
  jne 2f
  movzbq %r11b, %rax
  imul %rbx, %rax
  mov %r8, %rdi
  mov %r9, %rcx
  shr $3, %rcx
  rep stosq
  xor %eax, %eax
  out %al, $0xf4
2:
  lea -8(%rdi), %r12
3:
  movzbq (%r12), %r13
  cmp %dl, %r13b
  jne 4f
  inc %r12
  jmp 3b
4:
  mov $1, %al
  out %al, $0xf4
`;

/** The guest_memfd_test guest: host fills the whole 2 MiB gmem with 0xaa, guest checks every byte and writes 0xff. */
function gmemGuest(vm: Vm, userspace: "gmem" | "none" | "anon") {
  const gmem = vm.createGuestMemfd(GMEM_SIZE, "mmap,init-shared");
  const slot = vm.addMemslot({ slot: 1, gpa: GMEM_GPA, size: GMEM_SIZE, gmem, userspace });
  gmem.fillMem(0n, GMEM_SIZE, 0xaa);
  const r = runGuest(vm, {
    asm: CHECK_THEN_FILL,
    args: [GMEM_GPA, GMEM_SIZE, 0xaa, 0xff],
    timeoutMs: 20_000,
  });
  const passed = r.stop === "exit-code" && r.exitCode?.value === 0;
  const failed = r.stop === "exit-code" && r.exitCode?.value === 1;
  const mismatch = failed ? { addr: r.vcpu.getReg("r12"), found: r.vcpu.getReg("r13") } : undefined;
  return { r, gmem, slot, passed, mismatch };
}

gmemTest(
  "gmem MMAP|INIT_SHARED, userspace_addr = its mapping: guest reads 0xaa in all 2 MiB, writes 0xff, host sees 0xff everywhere",
  () => {
    using kvm = Kvm.open();
    using vm = kvm.createVm();
    const { r, gmem, passed, mismatch } = gmemGuest(vm, "gmem");
    ok(
      passed,
      `${r.stop} ${formatExit(r.exit)} ${JSON.stringify(mismatch, (_, v) => typeof v === "bigint" ? hex(v) : v)}`,
    );
    eq(gmem.mapping().verify(0n, GMEM_SIZE, 0xff), undefined, "every byte of the 2 MiB gmem is the guest's 0xff");
    ok(r.load.pageTables!.ranges.some((x) => x.gpa === GMEM_GPA), "page tables cover the gmem slot at 4 GiB");
  },
  "mmap,init-shared",
);

gmemTest("the whole-gmem guest check can fail: one byte off in the last page is found and named", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const gmem = vm.createGuestMemfd(GMEM_SIZE, "mmap,init-shared");
  vm.addMemslot({ slot: 1, gpa: GMEM_GPA, size: GMEM_SIZE, gmem, userspace: "gmem" });
  gmem.fillMem(0n, GMEM_SIZE, 0xaa);
  gmem.writeMem(GMEM_SIZE - 3n, new Uint8Array([0x5a]));
  const r = runGuest(vm, {
    asm: CHECK_THEN_FILL,
    args: [GMEM_GPA, GMEM_SIZE, 0xaa, 0xff],
    timeoutMs: 20_000,
  });
  eq(r.exitCode?.value, 1);
  eq([r.vcpu.getReg("r12"), r.vcpu.getReg("r13")], [GMEM_GPA + GMEM_SIZE - 3n, 0x5an]);
  eq(gmem.mapping().verify(0n, GMEM_SIZE - 3n, 0xaa), undefined, "nothing written before the check failed");
}, "mmap,init-shared");

gmemTest("gmem slot with userspace_addr none: what the guest gets is a host property", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const { r, gmem, passed } = gmemGuest(vm, "none");
  if (r.exit.name === "MMIO") eq(r.exit.mmio?.addr, GMEM_GPA);
  assertHost("gmem-slot-userspace-none-long-mode", r.exit.name === "MMIO" ? "MMIO" : passed ? "done" : r.stop);
  if (passed) eq(gmem.mapping().verify(0n, GMEM_SIZE, 0xff), undefined, "the guest's 0xff in every byte");
  else eq(gmem.mapping().verify(0n, GMEM_SIZE, 0xaa), undefined, "gmem bytes unchanged");
}, "mmap,init-shared");

gmemTest("gmem slot with separate anonymous userspace memory: which bytes the guest sees is a host property", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const { r, gmem, slot, passed, mismatch } = gmemGuest(vm, "anon");
  let sees: string;
  if (mismatch) {
    // The guest found a byte that is not 0xaa: the anonymous memory (zeros) answered.
    eq([mismatch.addr, mismatch.found], [GMEM_GPA, 0n]);
    sees = "anon";
    eq(gmem.mapping().verify(0n, GMEM_SIZE, 0xaa), undefined, "gmem untouched");
    eq(slot.backing!.verify(0n, GMEM_SIZE, 0), undefined, "anon memory untouched (the check stopped before writing)");
  } else {
    sees = passed ? "gmem" : `${r.stop}:${r.exit.name}`;
    if (passed) eq(gmem.mapping().verify(0n, GMEM_SIZE, 0xff), undefined, "the guest's 0xff in every byte");
  }
  assertHost("gmem-slot-userspace-anon-guest-sees", sees);
}, "mmap,init-shared");

/** The same guest over an anonymous slot at 4 GiB: host fills it with 0xaa, guest checks every byte and writes 0xff. */
function anonGuest(vm: Vm, poke?: { at: bigint; value: number }) {
  const slot = vm.addMemslot({ slot: 1, gpa: GMEM_GPA, size: GMEM_SIZE, userspace: "anon" });
  const mem = slot.backing!;
  mem.fill(0n, GMEM_SIZE, 0xaa);
  if (poke) mem.write(poke.at, new Uint8Array([poke.value]));
  const r = runGuest(vm, { asm: CHECK_THEN_FILL, args: [GMEM_GPA, GMEM_SIZE, 0xaa, 0xff], timeoutMs: 20_000 });
  return { r, mem };
}

kvmTest("anonymous slot at 4 GiB: guest reads 0xaa in all 2 MiB, writes 0xff, host sees 0xff everywhere", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const { r, mem } = anonGuest(vm);
  const mismatch = r.exitCode?.value === 1 ? { addr: r.vcpu.getReg("r12"), found: r.vcpu.getReg("r13") } : undefined;
  ok(
    r.stop === "exit-code" && r.exitCode?.value === 0,
    `${r.stop} ${formatExit(r.exit)} ${JSON.stringify(mismatch, (_, v) => typeof v === "bigint" ? hex(v) : v)}`,
  );
  eq(mem.verify(0n, GMEM_SIZE, 0xff), undefined, "every byte of the 2 MiB slot is the guest's 0xff");
  eq(vm.readGuest(GMEM_GPA + GMEM_SIZE - 1n, 1)[0], 0xff);
  ok(r.load.pageTables!.ranges.some((x) => x.gpa === GMEM_GPA), "page tables cover the slot at 4 GiB");
});

kvmTest("the whole-memory guest check can fail over anonymous memory: one byte off in the last page is named", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const { r, mem } = anonGuest(vm, { at: GMEM_SIZE - 3n, value: 0x5a });
  eq(r.exitCode?.value, 1);
  eq([r.vcpu.getReg("r12"), r.vcpu.getReg("r13")], [GMEM_GPA + GMEM_SIZE - 3n, 0x5an]);
  eq(mem.verify(0n, GMEM_SIZE - 3n, 0xaa), undefined, "nothing written before the check failed");
});

kvmTest("a guest touching an address with no memslot gets an MMIO exit naming it; a handler can answer it", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const hole = 0x8_0000_0000n + 0x123n;
  const maps = [{ gpa: 0x8_0000_0000n, size: PAGE }];
  const r = runGuest(vm, { elf: guestPath("touch"), args: [hole, 0], extraMaps: maps, timeoutMs: 5000 });
  eq(r.stop, "exit");
  eq(formatExit(r.exit), "MMIO read addr=0x800000123 len=1");
  // Write: the data the guest stored is in the exit.
  using vm2 = kvm.createVm();
  const w = runGuest(vm2, { elf: guestPath("touch"), args: [hole, 1, 0x5c], extraMaps: maps, timeoutMs: 5000 });
  eq(formatExit(w.exit), "MMIO write addr=0x800000123 len=1 data=0x5c");
  // A scenario handler supplies the read data; the guest reports what it read.
  using vm3 = kvm.createVm();
  const h = runGuest(vm3, {
    elf: guestPath("touch"),
    args: [hole, 0],
    extraMaps: maps,
    timeoutMs: 5000,
    handlers: {
      mmio: (x) => x.mmioAddress === Number(hole) && !x.mmioIsWrite ? ((x.mmioValue = 0x77), "continue") : undefined,
    },
  });
  eq(h.stop, "done");
  eq(h.ucalls[0].args.slice(0, 2), [0x77n, hole]);
});

kvmTest("triple fault (no IDT, #UD) gives SHUTDOWN; int3 without IDT is a host property", () => {
  using kvm = Kvm.open();
  {
    using vm = kvm.createVm();
    const r = runGuest(vm, { asm: "ud2", timeoutMs: 5000 });
    assertHost("triple-fault", r.exit.name);
    eq(r.exit.name, "SHUTDOWN");
  }
  {
    using vm = kvm.createVm();
    const r = runGuest(vm, { asm: "int3", timeoutMs: 5000 });
    if (r.exit.internalError) eq(r.exit.internalError.name, "EMULATION");
    assertHost("int3-without-idt", r.exit.name);
  }
});

kvmTest("ucall demo: print, sync(1), sync(2), done; a ucall handler can stop at sync", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const r = runGuest(vm, { elf: guestPath("ucall_demo"), timeoutMs: 5000 });
  eq(r.stop, "done");
  eq(r.ucalls.map((u) => `${u.cmd}:${u.args[0]}`), ["print:0", "sync:1", "sync:2", "done:0"]);
  eq(r.console, "hello from a ucall\n");
  // Stop at each sync, as a selftest's host loop does, then resume.
  using vm2 = kvm.createVm();
  const seen: string[] = [];
  const onUcall = (u: { cmd: string; args: bigint[] }) => u.cmd === "sync" ? "stop" as const : undefined;
  const first = runGuest(vm2, { elf: guestPath("ucall_demo"), timeoutMs: 5000, onUcall });
  let s: RunResult = first;
  while (s.stop === "ucall") {
    seen.push(`${s.ucalls.at(-1)!.cmd}:${s.ucalls.at(-1)!.args[0]}`);
    s = runVcpu(first.vcpu, { timeoutMs: 5000, onUcall });
  }
  eq(seen, ["sync:1", "sync:2"]);
  eq(s.stop, "done");
});

kvmTest("fill guest: args in rdi, rsi, rdx; ELF entry; memory written where asked", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const r = runGuest(vm, { elf: guestPath("fill"), args: [0x300000, 0x2000, 0x5a], timeoutMs: 5000 });
  eq(r.stop, "done");
  eq(r.load.entry, 0x100000n);
  eq(vm.readGuest(0x300000n, 0x2000).every((b) => b === 0x5a), true);
  eq(vm.readGuest(0x302000n, 1)[0], 0);
  const regs = r.vcpu.getRegs();
  eq(regs.rip > 0x100000n && regs.rip < 0x101000n, true);
});

kvmTest("inline asm: all six args registers, 64-bit CS, paging on", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const r = runGuest(vm, {
    asm:
      "add %rsi, %rdi; add %rdx, %rdi; add %rcx, %rdi; add %r8, %rdi; add %r9, %rdi; mov %rdi, %rax; out %eax, $0xf4",
    args: [1, 2, 3, 4, 5, 0x100],
    timeoutMs: 5000,
  });
  eq(r.exitCode?.value, 0x10f);
  const s = r.vcpu.getSregs();
  eq([s.cs.l, s.efer & 0x400n, s.cr0 >> 31n], [1, 0x400n, 1n]);
});

kvmTest("verify guest reports the first differing byte with a ucall assert", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  mainMemory(vm, { mode: "long" });
  vm.writeGuest(0x300000n, new Uint8Array(64).fill(0x11));
  vm.writeGuest(0x300000n + 40n, new Uint8Array([0x12]));
  const r = runGuest(vm, { elf: guestPath("verify"), args: [0x300000, 64, 0x11, NO_NEW_VALUE], timeoutMs: 5000 });
  eq(r.stop, "assert");
  eq(r.ucalls[0].args.slice(0, 2), [0x300028n, 0x12n]);
});

kvmTest("MAP_GPA_RANGE hypercall: KVM_CAP_EXIT_HYPERCALL enabled; the outcome is a host property", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const r = runGuest(vm, {
    elf: guestPath("map_gpa"),
    args: [0x200000, 1, 0x10],
    hypercallExit: true,
    timeoutMs: 1000,
  });
  eq(r.hypercallExit, "ok");
  let outcome: string;
  if (r.stop === "timeout") {
    // No exit at all: is the vCPU stuck on the vmcall?
    const rip = r.vcpu.getReg("rip");
    const code = vm.readGuest(rip, 3);
    eq([...code], [0x0f, 0x01, 0xc1], "RIP is on vmcall");
    outcome = "no-progress";
  } else {
    outcome = r.conversions.length ? "HYPERCALL" : r.exit.name;
    if (r.conversions.length) {
      // The conversion was sent; the kernel's answer (ENOTTY on a VM without memory attributes) is recorded.
      eq(r.conversions[0].gpa, 0x200000n);
      eq(r.conversions[0].to, "private");
    }
  }
  assertHost("map-gpa-range-hypercall", outcome);
});

kvmTest("memslot over PROT_NONE memory: MEMORY_FAULT (EFAULT) on hardware KVM, a host property here", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const none = Mapping.anonymous(2n << 20n, PROT.NONE);
  try {
    vm.addMemslot({ slot: 1, gpa: GMEM_GPA, size: 2n << 20n, userspace: none });
    const r = runGuest(vm, { elf: guestPath("touch"), args: [GMEM_GPA + 0x40n, 0], timeoutMs: 5000 });
    if (r.exit.name === "MEMORY_FAULT") {
      // Reported as an exit, not an exception: KVM_RUN failed with EFAULT and exit_reason MEMORY_FAULT.
      eq(r.exit.errno, "EFAULT");
      eq(r.exit.memoryFault?.private, false);
      ok(r.exit.memoryFault!.gpa <= GMEM_GPA + 0x40n);
    } else if (r.exit.name === "MMIO") {
      eq(r.exit.mmio?.addr, GMEM_GPA + 0x40n);
    }
    assertHost("memslot-prot-none-read", r.exit.name);
  } finally {
    vm.close();
    none.unmap();
  }
});
