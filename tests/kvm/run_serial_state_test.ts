/**
 * A guest's serial port keeps its registers across runs of the same vCPU that pass no GuestAbi
 * (the shell's `continue` and `step`, a recording's replay): a guest that set the divisor latch
 * (LCR.DLAB) before `hlt` writes the divisor, not a console byte, when it is resumed. runGuest (a
 * new image) starts from reset state.
 * @module
 */

import { deepStrictEqual as eq } from "node:assert/strict";
import { assemble, loadRealMode, runGuest, runVcpu, vcpuGuestAbi } from "../../mod.ts";
import { kvmTest, withVm } from "../kvm_env.ts";

/** LCR.DLAB on, hlt; then 'A' to THR/DLL (the divisor, no output), DLAB off, 'B' out, exit 0. */
const DLAB_ACROSS_HLT = [
  "mov $0x3fb, %dx",
  "mov $0x80, %al",
  "out %al, %dx",
  "hlt",
  "mov $0x3f8, %dx",
  "mov $0x41, %al",
  "out %al, %dx",
  "mov $0x3fb, %dx",
  "mov $0x03, %al",
  "out %al, %dx",
  "mov $0x3f8, %dx",
  "mov $0x42, %al",
  "out %al, %dx",
  "mov $0, %al",
  "out %al, $0xf4",
].join("\n");

kvmTest("runVcpu without an abi keeps the serial port's registers from the vCPU's last run", () => {
  withVm((vm) => {
    const first = runGuest(vm, { asm: DLAB_ACROSS_HLT, mode: "real", interruptible: false });
    eq([first.exit.name, first.console], ["HLT", ""]);
    const resumed = runVcpu(first.vcpu, { interruptible: false });
    eq(resumed.console, "B", "'A' went to the divisor latch (DLAB set before hlt), not the console");
    eq(resumed.exitCode?.value, 0);
    // A new image through runGuest starts from reset state: after a guest that left DLAB on,
    // the next image's 'A' prints.
    const dlabOn = runGuest(vm, { asm: "mov $0x3fb, %dx\nmov $0x80, %al\nout %al, %dx\nhlt", mode: "real" });
    eq(dlabOn.exit.name, "HLT");
    const next = runGuest(vm, {
      asm: "mov $0x3f8, %dx\nmov $0x41, %al\nout %al, %dx\nmov $0, %al\nout %al, $0xf4",
      mode: "real",
      interruptible: false,
    });
    eq([next.console, next.exitCode?.value], ["A", 0]);
  });
});

kvmTest("a loader (loadRealMode) starts the vCPU's guest ABI from reset, as runGuest does", () => {
  withVm((vm) => {
    const dlabOn = runGuest(vm, { asm: "mov $0x3fb, %dx\nmov $0x80, %al\nout %al, %dx\nhlt", mode: "real" });
    eq(dlabOn.exit.name, "HLT");
    const image = assemble("mov $0x3f8, %dx\nmov $0x41, %al\nout %al, %dx\nmov $0, %al\nout %al, $0xf4", {
      mode: "real",
    });
    loadRealMode(dlabOn.vcpu, image.bytes);
    const r = runVcpu(dlabOn.vcpu, { interruptible: false });
    eq([r.console, r.exitCode?.value], ["A", 0]);
  });
});

kvmTest("the vCPU's own guest ABI keeps no run's callbacks after the run (nor what they captured)", () => {
  withVm((vm) => {
    const seen: number[] = [];
    const r = runGuest(vm, {
      asm: "mov $0x42, %al\nout %al, $0xe9\nmov $0, %al\nout %al, $0xf4",
      mode: "real",
      interruptible: false,
      onConsole: (b) => seen.push(b),
      onUcall: () => "continue",
    });
    eq([r.console, seen], ["B", [0x42]]);
    const abi = vcpuGuestAbi(r.vcpu);
    eq([abi.onConsole, abi.onUcall], [undefined, undefined]);
  });
});
