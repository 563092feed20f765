/**
 * Child process of kick_listener_test.ts: a spinning guest the parent Ctrl-Cs (once or twice,
 * mode `plain`), or, mode `hold`, that run and then a SIGINT hold the parent Ctrl-Cs too; then a
 * sleep, during which the parent's last SIGINT must end the process (130, Deno's default with
 * no listener of the script's own): the kick's do-nothing listener must be gone by then.
 */

import { holdSigint, Kvm, runGuest } from "../../mod.ts";
import { READY_THEN_SPIN, readyHandler } from "./ready_in_run.ts";

const mode = Deno.args[0] ?? "plain";
using kvm = Kvm.open();
using vm = kvm.createVm();
runGuest(vm, { asm: "1: jmp 1b", timeoutMs: 20 });
const r = runGuest(vm, { asm: READY_THEN_SPIN, handlers: readyHandler });
console.log(`run stop: ${r.stop}`);
if (mode === "hold") {
  const h = holdSigint();
  console.log("hold-ready");
  const t0 = performance.now();
  while (h.count() === 0 && performance.now() - t0 < 5000) { /* the parent's SIGINT */ }
  h.release();
}
console.log("sleeping");
await new Promise((res) => setTimeout(res, 5000));
console.log("alive after the sleep");
