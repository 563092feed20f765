/**
 * Child process of vcpu_kick_signal_test.ts: several runs of a `jmp $` guest stopped by the
 * watchdog's kick (timeout), then a late kick (the kick signal sent to the main thread after the
 * VM and the watchdog are gone). Prints what the runs did as JSON, then stays alive until its
 * stdin closes, so the parent can look at its sockets.
 */

import { Kvm } from "../../mod.ts";
import { runGuest } from "../../kvm/run_guest.ts";
import { stopWatchdog } from "../../kvm/kick.ts";
import { KICK_SIGNO } from "../../kvm/kick_shared.ts";
import { libc } from "../../ffi/libc.ts";

// Deno arms its SIGUSR1 inspector trigger only once a process has run ~500 ms: start later than that,
// as a REPL session does.
await new Promise((r) => setTimeout(r, 700));
const runs: { stop: string; exit: string; errno?: string; ms: number }[] = [];
{
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  for (let i = 0; i < 4; i++) {
    const r = runGuest(vm, { asm: "1: jmp 1b", timeoutMs: 100 });
    runs.push({ stop: r.stop, exit: r.exit.name, errno: r.exit.errno, ms: r.elapsedMs });
  }
}
stopWatchdog();
// A late kick: the signal lands on the main thread with no run and no watchdog worker.
const l = libc();
l.tgkill(l.getpid(), l.gettid(), KICK_SIGNO);
// Whatever a signal starts (an inspector) starts on another thread: give it time to show.
await new Promise((r) => setTimeout(r, 300));
console.log(JSON.stringify({ pid: Deno.pid, runs }));
for await (const _ of Deno.stdin.readable) { /* until the parent closes stdin */ }
