/**
 * Child process of vcpu_kick_sigint_test.ts. Mode `listener`: the process has its own Deno SIGINT
 * listener (as the scenario runner does); mode `default`: none (as `kvmsh -c`). Runs a spinning
 * guest with no timeout until the parent's SIGINT, reports when it stopped, then waits for a
 * second SIGINT outside any run: with a listener the listener takes it; without one the default
 * action (the disposition the run restored) ends the process.
 */

import { Kvm } from "../../mod.ts";
import { runGuest } from "../../kvm/run_guest.ts";
import { READY_THEN_SPIN, readyHandler } from "./ready_in_run.ts";
import { kickStats } from "../../kvm/kick.ts";
import { nowMs } from "../../kvm/run_loop.ts";

const mode = Deno.args[0];
let heard = 0;
let second!: () => void;
const secondSigint = new Promise<void>((r) => (second = r));
if (mode === "listener") {
  Deno.addSignalListener("SIGINT", () => {
    if (++heard === 2) second();
  });
}
using kvm = Kvm.open();
using vm = kvm.createVm();
// The same guest under a short timeout first: assembled (cached), so the parent's SIGINT after
// "ready" lands in KVM_RUN, not in a cold `as`.
runGuest(vm, { asm: "1: jmp 1b", timeoutMs: 20 });
const r = runGuest(vm, { asm: READY_THEN_SPIN, handlers: readyHandler, timeoutMs: 0 });
const stoppedAt = nowMs();
await new Promise((res) => setTimeout(res, 100)); // Deno dispatches a passed-on SIGINT to listeners now
const again = runGuest(vm, { asm: "mov $3, %al; out %al, $0xf4", timeoutMs: 5000 });
console.log(
  JSON.stringify({ stop: r.stop, exit: r.exit.name, stoppedAt, heard, again: again.exitCode, ...kickStats() }),
);
if (mode === "listener") {
  await secondSigint;
  console.log(JSON.stringify({ heard }));
} else {
  await new Promise((res) => setTimeout(res, 10_000)); // the parent's second SIGINT ends the process
  console.log(JSON.stringify({ survived: true }));
}
