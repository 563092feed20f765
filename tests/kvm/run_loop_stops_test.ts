/**
 * Stops of the exit loop no other test reaches: `maxExits` (only the bench used it) and a stray
 * INTR (immediate_exit set with no stop asked for: the loop runs on), and the console of a run
 * counted in bytes (a character split across two runs is whole in the ABI's console).
 */

import { deepStrictEqual as eq } from "node:assert/strict";
import { kvmTest } from "../kvm_env.ts";
import { GuestAbi, Kvm } from "../../mod.ts";
import { runGuest } from "../../kvm/run_guest.ts";
import { runVcpu } from "../../kvm/run_loop.ts";

kvmTest("runVcpu: maxExits stops a guest that exits forever after exactly that many exits", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const r = runGuest(vm, { asm: "1: out %al, $0xe9; jmp 1b", mode: "real", maxExits: 10, timeoutMs: 5000 });
  eq([r.stop, r.exits], ["max-exits", 10]);
});

kvmTest("runVcpu: an INTR nobody asked for (immediate_exit set by a handler) does not stop the run", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const r = runGuest(vm, {
    asm: "out %al, $0x80; mov $5, %al; out %al, $0xf4",
    mode: "real",
    timeoutMs: 5000,
    handlers: {
      ports: {
        0x80: (x) => {
          x.immediateExit = 1;
          return "continue";
        },
      },
    },
  });
  eq([r.stop, r.exitCode?.value, r.exits], ["exit-code", 5, 3]);
});

kvmTest("runVcpu: each run's console is its own bytes; the ABI's console decodes them as a whole", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const abi = new GuestAbi();
  // "é" is 0xC3 0xA9: one byte per run.
  const first = runGuest(vm, {
    asm: "mov $0xc3, %al; out %al, $0xe9; mov $0xa9, %al; out %al, $0xe9; hlt",
    mode: "real",
    abi,
    maxExits: 1,
  });
  eq(first.stop, "max-exits");
  const second = runVcpu(first.vcpu, { abi, maxExits: 1 });
  eq(second.stop, "max-exits");
  eq(abi.console, "é");
  eq(abi.consoleLength, 2);
});
