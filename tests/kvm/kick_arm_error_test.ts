/**
 * A run whose arming fails leaves nothing armed: no deadline timer, the SIGINT disposition as it
 * was, and the vCPU runs normally afterwards. (An infinite timeout once got past the checks, left
 * a POSIX timer firing every 5 ms and the SIGINT handler pointing at the vCPU's kvm_run: after the
 * VM closed, one Ctrl-C was a SIGSEGV.)
 */

import { deepStrictEqual as eq, throws } from "node:assert/strict";
import { kvmTest } from "../kvm_env.ts";
import { Kvm } from "../../mod.ts";
import { runGuest } from "../../kvm/run_guest.ts";
import { armWatchdog, kickStats } from "../../kvm/kick.ts";
import { libc, SIG } from "../../ffi/libc.ts";
import { SIGACTION } from "../../ffi/structs.ts";

const disposition = () => {
  const b = new Uint8Array(SIGACTION.size);
  libc().sigaction(SIG.INT, null, b);
  return new DataView(b.buffer).getBigUint64(SIGACTION.fields.sa_handler.offset, true);
};

kvmTest("kick: an infinite timeout or deadline is refused before anything is armed; the vCPU runs on", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const first = runGuest(vm, { asm: "hlt", mode: "real", timeoutMs: 1000 });
  eq(first.stop, "exit");
  const before = { sigint: disposition(), timers: kickStats().timers };
  throws(() => runGuest(vm, { asm: "hlt", mode: "real", timeoutMs: Infinity }), /timeoutMs must be finite/);
  throws(() => runGuest(vm, { asm: "hlt", mode: "real", deadline: Infinity }), /deadline must be a finite time/);
  // The kick itself, given one anyway: it throws and disarms what it had set up.
  const v = first.vcpu;
  throws(
    () =>
      armWatchdog({
        tid: v.tid,
        runAddress: v.runAddress,
        deadline: Infinity,
        deadlineKind: "timeout",
        interruptible: true,
      }),
    /deadline must be finite/,
  );
  eq({ sigint: disposition(), timers: kickStats().timers }, before);
  const again = runGuest(vm, { asm: "mov $5, %al; out %al, $0xf4", mode: "real", timeoutMs: 1000 });
  eq(again.exitCode?.value, 5);
  eq(disposition(), before.sigint);
});
