/** Worker of kick_hold_child.ts `isolates` and `worker-run`: an interruptible run of a spinning guest for 2.5 s. */

import { Kvm } from "../../mod.ts";
import { runGuest } from "../../kvm/run_guest.ts";

const post = (self as unknown as { postMessage(m: unknown): void }).postMessage.bind(self);
using kvm = Kvm.open();
using vm = kvm.createVm();
post("started");
const r = runGuest(vm, { asm: "1: jmp 1b", timeoutMs: 2500 });
post(r.stop);
