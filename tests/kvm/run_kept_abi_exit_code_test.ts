/**
 * A GuestAbi kept across runs (RunOptions.abi: "keep across runs") keeps the exit code its guest
 * last wrote; a later runVcpu/stepVcpu whose guest wrote none must not report that old one as its
 * own `exitCode` (RunResult: "when the guest wrote port 0xF4"). Before, every run after the one
 * that wrote 7 reported exit code 7 again.
 * @module
 */

import { deepStrictEqual as eq } from "node:assert/strict";
import { kvmTest } from "../kvm_env.ts";
import { GuestAbi, Kvm, runGuest, runVcpu, stepVcpu } from "../../mod.ts";

kvmTest("runVcpu/stepVcpu with a kept GuestAbi: only an exit code written during this run is reported", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const abi = new GuestAbi();
  const r = runGuest(vm, { asm: "mov $7, %al; out %al, $0xf4; hlt; nop; nop; hlt; mov $9, %al; out %al, $0xf4", abi });
  eq([r.stop, r.exitCode?.value], ["exit-code", 7]);
  const c = runVcpu(r.vcpu, { abi, timeoutMs: 5000 });
  eq([c.stop, c.exit.name, c.exitCode], ["exit", "HLT", undefined]);
  const s = stepVcpu(r.vcpu, { abi, timeoutMs: 5000 }); // over a nop
  eq([s.stop, s.exit.name, s.exitCode], ["exit", "DEBUG", undefined]);
  eq(abi.exitCode?.value, 7, "the ABI itself still holds the last value written");
  eq(runVcpu(r.vcpu, { abi, timeoutMs: 5000 }).exitCode, undefined);
  const again = runVcpu(r.vcpu, { abi, timeoutMs: 5000 });
  eq([again.stop, again.exitCode], ["exit-code", { value: 9, status: 19 }]);
});
