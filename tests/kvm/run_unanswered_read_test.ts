/**
 * A read the run stopped on because nobody answered it — an IN from a port kvmsh does not
 * emulate, an MMIO read of unbacked memory — gives the guest all-ones when the vCPU is resumed
 * (the shell's `continue`), as a bus with nothing there does, not the bytes the previous exit left
 * in kvm_run.
 * @module
 */

import { deepStrictEqual as eq } from "node:assert/strict";
import { runGuest, runVcpu } from "../../mod.ts";
import { kvmTest, withVm } from "../kvm_env.ts";

kvmTest("continue after an unanswered IN: the guest reads all-ones", () => {
  withVm((vm) => {
    // The exit code port first leaves 0x5a in kvm_run's data area, then the IN from port 0x60.
    const asm = "mov $0x5a, %al\nout %al, $0x80\nin $0x60, %al\nout %al, $0xf4";
    const first = runGuest(vm, {
      asm,
      mode: "real",
      interruptible: false,
      handlers: { ports: { 0x80: () => "continue" as const } },
    });
    eq([first.stop, first.exit.name], ["unhandled-io", "IO"]);
    const resumed = runVcpu(first.vcpu, { interruptible: false });
    eq(resumed.exitCode?.value, 0xff);
  });
});

kvmTest("continue after an unanswered MMIO read: the guest reads all-ones", () => {
  withVm((vm) => {
    // A byte written to unbacked memory (an MMIO write the handler answers), then a read of it.
    const asm = [
      "mov $0xffff, %ax",
      "mov %ax, %ds",
      "movb $0x5a, 0x20",
      "mov 0x10, %al",
      "out %al, $0xf4",
    ].join("\n");
    const first = runGuest(vm, {
      asm,
      mode: "real",
      interruptible: false,
      handlers: { mmio: (x) => (x.mmioIsWrite ? "continue" as const : undefined) },
    });
    eq([first.exit.name, first.exit.mmio?.isWrite], ["MMIO", false]);
    const resumed = runVcpu(first.vcpu, { interruptible: false });
    eq(resumed.exitCode?.value, 0xff);
  });
});
