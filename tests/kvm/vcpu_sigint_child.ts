/**
 * Child process of vcpu_stop_test.ts: runs a `jmp $` guest with no timeout until Ctrl-C
 * (SIGINT from the parent), then runs the VM again and prints both results as JSON.
 */

import { Kvm } from "../../mod.ts";
import { runGuest } from "../../kvm/run_guest.ts";
import { READY_THEN_SPIN, readyHandler } from "./ready_in_run.ts";

using kvm = Kvm.open();
using vm = kvm.createVm();
// The same guest once with a short timeout first: assembled (cached) and the kick set up, so the
// parent's SIGINT after "ready" lands in KVM_RUN, not in a cold `as` (a flake under load).
runGuest(vm, { asm: "1: jmp 1b", timeoutMs: 20 });
const first = runGuest(vm, { asm: READY_THEN_SPIN, handlers: readyHandler });
const again = runGuest(vm, { asm: "mov $3, %al; out %al, $0xf4", timeoutMs: 5000 });
console.log(JSON.stringify({ first: { stop: first.stop, exit: first.exit.name }, again: again.exitCode }));
