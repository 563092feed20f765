/**
 * Child process of kick_hold_test.ts (no SIGINT listener: SIGINT's default action ends it).
 *
 * - `hold`: under holdSigint() a SIGINT is counted and kept (the process lives), a run under the
 *   hold stops before it starts, the hold's release restores what was there (Deno's handler, which
 *   the kick has Deno install first; with no listener a later SIGINT ends the process).
 * - `asm`: under a hold, the parent sends SIGINT to the whole process group while a (fake, slow)
 *   `as` runs: assemble() throws InterruptedError and removes its work directory.
 * - `sync`: a first hold with { synchronous: true } keeps SIGINTs without having Deno install its
 *   own handler first (SIG_DFL again after it, and after a run).
 * - `worker-run`: a Worker's interruptible run with no hold first leaves Deno's handler installed
 *   (a listener here then hears a SIGINT).
 * - `isolates`: a Worker's interruptible run has the SIGINT handler; an interruptible run here is
 *   refused with a clear error meanwhile, a deadline-only run is not; afterwards both work and the
 *   default disposition is back.
 */

import { Kvm } from "../../mod.ts";
import { runGuest } from "../../kvm/run_guest.ts";
import { holdSigint, kickStats } from "../../kvm/kick.ts";
import { assemble } from "../../kvm/asm.ts";
import { libc, SIG } from "../../ffi/libc.ts";
import { SIGACTION } from "../../ffi/structs.ts";

const say = (o: unknown) => console.log(JSON.stringify(o));
const disposition = () => {
  const b = new Uint8Array(SIGACTION.size);
  libc().sigaction(SIG.INT, null, b);
  return new DataView(b.buffer).getBigUint64(SIGACTION.fields.sa_handler.offset, true).toString();
};

const mode = Deno.args[0];
if (mode === "hold") {
  const initial = disposition();
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  holdSigint().release(); // the kick exists (it has Deno install its SIGINT handler first)
  const before = disposition();
  const h = holdSigint();
  Deno.kill(Deno.pid, "SIGINT");
  const t0 = performance.now();
  while (h.count() === 0 && performance.now() - t0 < 2000) { /* the signal lands on some thread */ }
  const counted = h.count();
  const r = runGuest(vm, { asm: "1: jmp 1b", timeoutMs: 5000 });
  h.release();
  const plain = runGuest(vm, { asm: "mov $3, %al; out %al, $0xf4", timeoutMs: 5000 });
  say({
    initial,
    before,
    counted,
    stop: r.stop,
    elapsedMs: r.elapsedMs,
    after: disposition(),
    again: plain.exitCode?.value,
  });
  Deno.kill(Deno.pid, "SIGINT"); // the default action again: ends the process
  await new Promise((res) => setTimeout(res, 5000));
  say({ survived: true });
} else if (mode === "asm") {
  const h = holdSigint();
  let error = "";
  console.log("ready");
  try {
    assemble(`nop # ${Date.now()} ${Math.random()}`); // never cached: the fake `as` runs
  } catch (e) {
    error = `${(e as Error).name}: ${(e as Error).message}`;
  }
  h.release();
  say({ error, counted: h.count() });
} else if (mode === "sync") {
  // The shell's case: its first hold is synchronous (main isolate, no Worker), so Deno is not
  // made to install its own handler, and the runs after it keep that. SIGINTs are still kept.
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const initial = disposition();
  const h = holdSigint({ synchronous: true });
  const held = disposition();
  Deno.kill(Deno.pid, "SIGINT");
  const t0 = performance.now();
  while (h.count() === 0 && performance.now() - t0 < 2000) { /* the signal lands on some thread */ }
  h.release();
  const afterSync = disposition();
  const stop = runGuest(vm, { asm: "hlt", timeoutMs: 5000 }).stop;
  say({ initial, held, counted: h.count(), afterSync, stop, afterRun: disposition() });
} else if (mode === "worker-run") {
  // A Worker's interruptible run, with no hold before it, while this isolate's event loop turns
  // past the moment Deno installs its own handler (~0.5 s): afterwards Deno's handler is in place
  // and a listener here hears a SIGINT (the process lives).
  const w = new Worker(new URL("./kick_hold_worker.ts", import.meta.url), { type: "module" });
  const done = new Promise<string>((res) => (w.onmessage = (e) => e.data !== "started" && res(e.data)));
  const ticks = setInterval(() => {}, 20);
  const worker = await done;
  clearInterval(ticks);
  w.terminate();
  let heard = 0;
  Deno.addSignalListener("SIGINT", () => heard++);
  Deno.kill(Deno.pid, "SIGINT");
  await new Promise((res) => setTimeout(res, 300));
  say({ worker, heard, disposition: disposition() });
  Deno.exit(0);
} else if (mode === "isolates") {
  holdSigint().release();
  const before = disposition();
  const w = new Worker(new URL("./kick_hold_worker.ts", import.meta.url), { type: "module" });
  const done = new Promise<string>((res) => (w.onmessage = (e) => e.data !== "started" && res(e.data)));
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  await new Promise((res) => setTimeout(res, 1000)); // the worker's guest spins by now
  let refused = "";
  try {
    runGuest(vm, { asm: "hlt", timeoutMs: 1000 });
  } catch (e) {
    refused = (e as Error).message;
  }
  const deadlineOnly = runGuest(vm, { asm: "hlt", timeoutMs: 1000, interruptible: false }).stop;
  const worker = await done;
  w.terminate();
  const after = runGuest(vm, { asm: "hlt", timeoutMs: 1000 }).stop;
  say({ refused, deadlineOnly, worker, after, before, disposition: disposition(), sigintRuns: kickStats().sigintRuns });
}
