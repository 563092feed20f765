/** `timeoutMs: 0` means no timeout: the run goes on until the guest stops or Ctrl-C stops it. */

import { deepStrictEqual as eq, ok, throws } from "node:assert/strict";
import { kvmTest } from "../kvm_env.ts";
import { Kvm } from "../../mod.ts";
import { runGuest } from "../../kvm/run_guest.ts";
import { interruptChild } from "./sigint_child_runner.ts";

/** 4096 console exits, then exit code 5: far more exits than the loop's deadline check interval. */
export const CHATTY =
  "mov $4096, %ecx; 1: mov $0x2e, %al; out %al, $0xe9; dec %ecx; jnz 1b; mov $5, %al; out %al, $0xf4";

kvmTest("timeoutMs 0: a guest with thousands of exits runs to its end (no timeout)", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const r = runGuest(vm, { asm: CHATTY, timeoutMs: 0 });
  eq(r.stop, "exit-code");
  eq(r.exitCode?.value, 5);
  eq(r.console.length, 4096);
  eq(r.exits, 4097);
});

kvmTest("timeoutMs below 0 or not a number is a RangeError", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  throws(() => runGuest(vm, { asm: "hlt", timeoutMs: -1 }), RangeError);
  throws(() => runGuest(vm, { asm: "hlt", timeoutMs: NaN }), RangeError);
});

kvmTest("timeoutMs 0: a spinning guest is not stopped by time; Ctrl-C (SIGINT) stops it", async () => {
  const r = await interruptChild(new URL("./vcpu_no_timeout_child.ts", import.meta.url), 700);
  eq(r.code, 0, r.stderr);
  eq([r.result.stop, r.result.exit], ["interrupt", "INTR"]);
  ok(r.result.ms >= 600, `the run lasted ${r.result.ms} ms until Ctrl-C`);
});
