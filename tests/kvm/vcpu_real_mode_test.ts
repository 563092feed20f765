/**
 * Real-mode guests on real KVM: console, exit code, HLT, COM1, single-step, gmem-backed memory
 * (skipped, with the reason, on a host whose KVM cannot make an mmap|init-shared guest_memfd).
 */

import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { gmemTest, kvmTest } from "../kvm_env.ts";
import { Kvm } from "../../mod.ts";
import { runGuest } from "../../kvm/run_guest.ts";
import { runVcpu } from "../../kvm/run_loop.ts";
import { guestPath } from "../../kvm/loaders/library.ts";
import { formatExit } from "../../kvm/exit_decode.ts";
import { assertHost } from "./vcpu_host_profile.ts";

const asm16 = (s: string) => ({ asm: s, mode: "real" as const, timeoutMs: 5000 });

kvmTest("real mode: out 0xE9 hello world reaches the console, hlt → HLT", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const r = runGuest(
    vm,
    asm16(`
    mov $msg, %si
1:  lodsb
    test %al, %al
    jz 2f
    out %al, $0xe9
    jmp 1b
2:  hlt
msg: .asciz "hello, world\\n"`),
  );
  eq(r.console, "hello, world\n");
  eq(r.exit.name, "HLT");
  eq(r.stop, "exit");
  eq(r.load.loadAddress, 0x10000n); // kvmtool's 0x1000:0000
  const s = r.vcpu.getSregs();
  eq([s.cs.selector, s.ss.selector, s.cs.base], [0x1000, 0x1000, 0x10000n]);
  eq(r.vcpu.getReg("rsp"), 0x8000n);
});

kvmTest("real mode: out 0xF4 gives the exit code (value and QEMU status (v<<1)|1)", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const r = runGuest(vm, asm16(`mov $0x21, %al; out %al, $0xf4; hlt`));
  eq(r.stop, "exit-code");
  eq(r.exitCode, { value: 0x21, status: 0x43 });
  eq(formatExit(r.exit), "IO out port=0xf4 size=1 data=0x21");
});

kvmTest("real mode: load segment, offset and sp are overridable", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const r = runGuest(vm, { ...asm16(`mov %sp, %ax; out %ax, $0xf4`), segment: 0x2000, offset: 0x100, sp: 0x7000 });
  eq(r.load.loadAddress, 0x20100n);
  eq(r.exitCode?.value, 0x7000);
});

kvmTest("guest library hello16: 0xE9 and the 16550 on COM1 (LSR polled)", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const r = runGuest(vm, { image: guestPath("hello16"), timeoutMs: 5000 });
  eq(r.console, "Hello, world!\nserial ok\n");
  eq(r.exit.name, "HLT");
});

kvmTest("IN data from a scenario's port handler; unhandled port stops with the IO exit", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const r = runGuest(vm, {
    ...asm16(`in $0x70, %al; out %al, $0xf4`),
    handlers: { ports: { 0x70: (x) => ((x.ioValue = 0x5a), "continue") } },
  });
  eq(r.exitCode?.value, 0x5a);
  using vm2 = kvm.createVm();
  const u = runGuest(vm2, asm16(`in $0x71, %al; hlt`));
  eq(u.stop, "unhandled-io");
  eq(formatExit(u.exit), "IO in port=0x71 size=1");
});

kvmTest("single-step (KVM_SET_GUEST_DEBUG) works here: DEBUG exit after each instruction", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const r = runGuest(vm, { ...asm16(`nop; nop; mov $1, %al; hlt`), maxExits: 1, handlers: { hlt: () => "stop" } });
  const cpu = r.vcpu;
  // Start again from the first instruction, stepping.
  cpu.setRegs({ rip: 0n });
  cpu.setGuestDebug({ singleStep: true });
  const pcs: bigint[] = [];
  for (let i = 0; i < 3; i++) {
    const s = runVcpu(cpu);
    eq(s.exit.name, "DEBUG");
    eq(s.exit.debug?.exception, 1);
    pcs.push(s.exit.debug!.pc);
  }
  eq(pcs, [0x10001n, 0x10002n, 0x10004n]);
  cpu.setGuestDebug({});
  eq(runVcpu(cpu).exit.name, "HLT");
});

kvmTest("real mode with memory anon (the default, given by name): the main slot is anonymous memory", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const r = runGuest(vm, { ...asm16(`movb $0x42, %ds:0x100; mov $7, %al; out %al, $0xf4`), memory: "anon" });
  eq(r.exitCode?.value, 7);
  eq([r.memslot.gmem, r.memslot.gpa, r.memslot.describe().userspace], [undefined, 0n, "anon"]);
  // %ds is the load segment 0x1000: the guest's byte is at 0x10100 of the slot's memory.
  eq([...r.memslot.backing!.read(0x10100n, 1)], [0x42]);
});

gmemTest("real mode with gmem memory: userspace_addr gmem runs; none is a host property", () => {
  using kvm = Kvm.open();
  {
    using vm = kvm.createVm();
    const r = runGuest(vm, { ...asm16(`mov $7, %al; out %al, $0xf4`), memory: "gmem:mmap,init-shared" });
    eq(r.exitCode?.value, 7);
    ok(r.memslot.gmem, "main memory is a gmem slot");
  }
  {
    using vm = kvm.createVm();
    const r = runGuest(vm, { ...asm16(`hlt`), memory: "gmem:mmap,init-shared", userspace: "none" });
    assertHost("gmem-slot-userspace-none-real-mode", r.exit.name);
  }
}, "mmap,init-shared");
