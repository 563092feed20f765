/**
 * Child process of vcpu_stop_test.ts "runs start no Worker": counts its own threads around two
 * runs (one with a deadline that stops it), alone in its process — in the shared test process
 * Deno's runtime threads come and go on their own. Prints one JSON line.
 */

import { Kvm } from "../../mod.ts";
import { runGuest } from "../../kvm/run_guest.ts";
import { kickStats, watchdogRunning } from "../../kvm/kick.ts";
import { listDir } from "../../ffi/procfs.ts";

const threads = () => listDir("/proc/self/task")!.length;
using kvm = Kvm.open();
using vm = kvm.createVm();
// Warm-up: the kick's handlers are installed once, both guests are assembled (cached) once.
runGuest(vm, { asm: "hlt", timeoutMs: 1000 });
runGuest(vm, { asm: "1: jmp 1b", timeoutMs: 20 });
await new Promise((r) => setTimeout(r, 700)); // past the runtime's own late start-up work
const before = kickStats();
const n = threads();
const short = runGuest(vm, { asm: "hlt", timeoutMs: 1000 });
const spin = runGuest(vm, { asm: "1: jmp 1b", timeoutMs: 150 });
const during = threads();
const after = kickStats();
const quiet = runGuest(vm, { asm: "hlt", timeoutMs: 0, interruptible: false });
console.log(JSON.stringify({
  threadsBefore: n,
  threadsAfter: during,
  short: short.stop,
  spin: spin.stop,
  quiet: quiet.stop,
  watchdogRunning: watchdogRunning(),
  before,
  after,
  last: kickStats(),
}));
