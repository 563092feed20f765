/**
 * Single-step through the API: stepVcpu goes on from wherever a run stopped (HLT, timeout, an IO
 * exit), one DEBUG exit per instruction with the exits in between; codeAt finds the instruction
 * bytes at RIP in real and long mode; single-step is off again afterwards.
 */

import { deepStrictEqual as eq, ok, throws } from "node:assert/strict";
import { kvmTest } from "../kvm_env.ts";
import { codeAt, Kvm, runGuest, runVcpu, stepVcpu } from "../../mod.ts";
import { assertHost } from "./vcpu_host_profile.ts";

// hlt@0 nop@1 nop@2 mov $0x41,%al@3 out %al,$0xe9@5 nop@7 jmp .@8
const PROGRAM = `hlt; nop; nop; mov $0x41, %al; out %al, $0xe9; nop; 1: jmp 1b`;

for (const mode of ["real", "long"] as const) {
  const base = mode === "real" ? 0n : 0x100000n; // the image's offset in CS (real) / load address (long)
  const linearBase = mode === "real" ? 0x10000n : 0x100000n; // 0x1000:0000 in real mode

  kvmTest(`${mode} mode: step 1 and step 3 from a HLT stop; IO exits on the way; bytes at RIP`, () => {
    using kvm = Kvm.open();
    using vm = kvm.createVm();
    const r = runGuest(vm, { asm: PROGRAM, mode, timeoutMs: 5000 });
    eq(r.exit.name, "HLT");
    const cpu = r.vcpu;
    eq(cpu.getReg("rip"), base + 1n);

    const one = stepVcpu(cpu);
    eq(one.stop, "exit");
    eq(one.exit.name, "DEBUG");
    eq(one.steps.map((s) => s.rip), [base + 2n]);
    eq(one.steps[0].pc, linearBase + 2n, "the DEBUG exit's pc is the linear address");
    eq(one.steps[0].exits, []);
    eq(cpu.singleStep, false, "single-step is off again after the step");

    const at = codeAt(cpu);
    eq(at.mode, mode);
    eq(at.rip, base + 2n);
    eq(at.linear, linearBase + 2n);
    eq(at.gpa, linearBase + 2n);
    eq([...at.bytes!.subarray(0, 5)], [0x90, 0xb0, 0x41, 0xe6, 0xe9], "nop; mov $0x41,%al; out");
    eq(at.bytes!.length, 15);

    const three = stepVcpu(cpu, { count: 3 });
    eq(three.stop, "exit");
    const rips = three.steps.map((s) => s.rip);
    eq(rips.slice(0, 2), [base + 3n, base + 5n]);
    const io = three.steps[2].exits;
    eq(io.map((e) => e.name), ["IO"], "the OUT's IO exit is seen during the third step");
    eq(io[0].io?.port, 0xe9);
    eq(io[0].io?.data, [0x41]);
    eq(three.console, "A");
    assertHost(
      "single-step-over-out",
      rips[2] === base + 7n ? "after-out" : rips[2] === base + 8n ? "after-next" : `rip ${rips[2]}`,
    );

    // The jmp $ loop: each step leaves RIP where it was.
    const spin = stepVcpu(cpu, { count: 2 });
    eq(spin.steps.map((s) => s.rip), [base + 8n, base + 8n]);
    eq(codeAt(cpu).bytes?.subarray(0, 2), new Uint8Array([0xeb, 0xfe]));
  });

  kvmTest(`${mode} mode: a timeout-stopped jmp $ steps on the jmp; continue (runVcpu) is not stepped`, () => {
    using kvm = Kvm.open();
    using vm = kvm.createVm();
    const r = runGuest(vm, { asm: "nop; 1: jmp 1b", mode, timeoutMs: 300 });
    eq(r.stop, "timeout");
    const cpu = r.vcpu;
    const rip = cpu.getReg("rip");
    eq(rip, base + 1n);
    eq(stepVcpu(cpu).steps.map((s) => s.rip), [rip]);
    const c = runVcpu(cpu, { timeoutMs: 200 });
    eq(c.stop, "timeout", "without single-step the guest spins until the timeout");
    eq(c.exit.name, "INTR");
    eq(cpu.getReg("rip"), rip);
  });
}

kvmTest("step stops early at the exit code (the IO exit in the trail), the next step completes the OUT", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const r = runGuest(vm, { asm: "hlt; mov $7, %al; out %al, $0xf4; nop; nop; hlt", mode: "real", timeoutMs: 5000 });
  const cpu = r.vcpu;
  const s = stepVcpu(cpu, { count: 5 });
  eq(s.stop, "exit-code");
  eq(s.exitCode?.value, 7);
  eq(s.steps.map((x) => x.rip), [3n]);
  eq(s.trail.map((e) => e.name), ["IO"]);
  eq(s.exit.name, "IO");
  const next = stepVcpu(cpu);
  eq(next.stop, "exit");
  const rip = next.steps[0].rip; // out@3 (2 bytes), nop@5, nop@6
  assertHost("single-step-over-out", rip === 5n ? "after-out" : rip === 6n ? "after-next" : `rip ${rip}`);
});

kvmTest("step over hlt: which exit the step gives is a host property", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const r = runGuest(vm, { asm: "hlt; hlt; nop; 1: jmp 1b", mode: "real", timeoutMs: 5000 });
  eq(r.exit.name, "HLT");
  const s = stepVcpu(r.vcpu, { timeoutMs: 2000 });
  assertHost("single-step-over-hlt", s.exit.name);
  if (s.exit.name === "DEBUG") eq(s.steps[0].rip, 2n);
});

kvmTest("step: bad count refused before anything is sent; a huge count stops at the timeout", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const r = runGuest(vm, { asm: "hlt; 1: jmp 1b", mode: "long", timeoutMs: 5000 });
  throws(() => stepVcpu(r.vcpu, { count: 0 }), RangeError);
  eq(r.vcpu.singleStep, false);
  const s = stepVcpu(r.vcpu, { count: 1e9, timeoutMs: 200 });
  eq(s.stop, "timeout");
  ok(s.steps.length > 10, `${s.steps.length} steps in 200 ms`);
  ok(s.steps.every((x) => x.rip === 0x100001n));
  eq(s.stepped, s.steps.length);
  eq(r.vcpu.singleStep, false);
  const kept = stepVcpu(r.vcpu, { count: 100, keepSteps: 10 });
  eq([kept.stop, kept.stepped, kept.steps.length, kept.exits], ["exit", 100, 10, 100]);
  throws(() => stepVcpu(r.vcpu, { keepSteps: 0 }), RangeError);
});

kvmTest("codeAt: RIP outside every memslot names the GPA; paging off in real mode", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const r = runGuest(vm, { asm: "hlt", mode: "real", timeoutMs: 5000 });
  r.vcpu.setSregs({ cs: { base: 0x7000000n, selector: 0x7000 } });
  const at = codeAt(r.vcpu);
  eq(at.mode, "real");
  eq(at.gpa, 0x7000001n);
  eq(at.bytes, undefined);
  eq(at.note, "no memslot at GPA 0x7000001");
});
