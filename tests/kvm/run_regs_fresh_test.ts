/**
 * A guest loaded on a vCPU that ran before starts with the general-purpose registers of a new
 * one: the arguments given, 0 for every other register. Before, the loaders set only RIP, RSP,
 * RFLAGS and the given arguments, so `run touch.elf --arg A,1,V` then `run touch.elf --arg A`
 * wrote again (RSI still 1) instead of reading, and overwrote guest memory with the stale DL.
 * @module
 */

import { deepStrictEqual as eq } from "node:assert/strict";
import { kvmTest } from "../kvm_env.ts";
import { guestPath, Kvm, runGuest } from "../../mod.ts";

const GPRS = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];

kvmTest("runGuest: an argument not given is 0, not what the last guest left (touch.elf reads, not writes)", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const touch = guestPath("touch");
  const w = runGuest(vm, { elf: touch, args: [0x200000n, 1n, 0x55n] });
  eq([w.stop, w.ucalls[0].args[0]], ["done", 0x55n]);
  vm.writeGuest(0x200000n, new Uint8Array([0x11]));
  const r = runGuest(vm, { elf: touch, args: [0x200000n] });
  eq([r.stop, r.ucalls[0].args[0]], ["done", 0x11n], "rsi = 0: a read of the byte");
  eq(vm.readGuest(0x200000n, 1), new Uint8Array([0x11]), "guest memory untouched");
});

for (const mode of ["long", "real"] as const) {
  kvmTest(`runGuest (${mode} mode): every GPR but the arguments is 0 at entry, whatever the last guest set`, () => {
    using kvm = Kvm.open();
    using vm = kvm.createVm();
    const dirty = mode === "long"
      ? "mov $-1, %rax; mov %rax, %rbx; mov %rax, %rcx; mov %rax, %rdx; mov %rax, %rsi; mov %rax, %rdi; " +
        "mov %rax, %rbp; mov %rax, %r8; mov %rax, %r9; mov %rax, %r10; mov %rax, %r11; mov %rax, %r12; " +
        "mov %rax, %r13; mov %rax, %r14; mov %rax, %r15; hlt"
      : "mov $-1, %eax; mov %eax, %ebx; mov %eax, %ecx; mov %eax, %edx; mov %eax, %esi; mov %eax, %edi; " +
        "mov %eax, %ebp; hlt";
    eq(runGuest(vm, { asm: dirty, mode }).exit.name, "HLT");
    const r = runGuest(vm, { asm: "hlt", mode, args: [5n, 6n] });
    eq(r.exit.name, "HLT");
    const regs = r.vcpu.getRegs() as unknown as Record<string, bigint>;
    eq(Object.fromEntries(GPRS.map((g) => [g, regs[g]])), {
      ...Object.fromEntries(GPRS.map((g) => [g, 0n])),
      rdi: 5n,
      rsi: 6n,
    });
  });
}
