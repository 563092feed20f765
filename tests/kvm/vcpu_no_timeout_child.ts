/**
 * Child process of vcpu_no_timeout_test.ts: runs a `jmp $` guest with `timeoutMs: 0` (no timeout)
 * until Ctrl-C (SIGINT from the parent), then prints the result as JSON.
 */

import { Kvm } from "../../mod.ts";
import { runGuest } from "../../kvm/run_guest.ts";
import { READY_THEN_SPIN, readyHandler } from "./ready_in_run.ts";

using kvm = Kvm.open();
using vm = kvm.createVm();
// The same guest under a short timeout first: assembled (cached) and the kick set up, so the
// parent's SIGINT after "ready" lands in KVM_RUN, not in a cold `as`.
runGuest(vm, { asm: "1: jmp 1b", timeoutMs: 20 });
const r = runGuest(vm, { asm: READY_THEN_SPIN, handlers: readyHandler, timeoutMs: 0 });
console.log(JSON.stringify({ stop: r.stop, exit: r.exit.name, ms: r.elapsedMs }));
