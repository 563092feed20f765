/**
 * The watchdog Worker (see kick.ts). It sleeps on a SharedArrayBuffer doorbell; while a run is
 * armed it waits for the deadline and, while the run is interruptible, listens for SIGINT. To
 * stop the guest it kicks the vCPU as QEMU does: kvm_run.immediate_exit = 1, then
 * tgkill(pid, vcpu_tid, KICK_SIGNAL) so a blocking KVM_RUN returns EINTR (SIGUSR2; see kick_shared.ts for
 * why not SIGUSR1).
 * @module
 */

import { libc } from "../ffi/libc.ts";
import { KVM_RUN_LAYOUT } from "../ffi/structs.ts";
import { CTL, KICK_SIGNAL, KICK_SIGNO, STOP_CODE } from "./kick_shared.ts";

const O_IMMEDIATE = KVM_RUN_LAYOUT.fields.immediate_exit.offset;

let ctl: Int32Array;
let deadline: Float64Array;
let sigintOn = false;
const noop = () => {};

function now(): number {
  return performance.timeOrigin + performance.now();
}

/** Kicks the armed run `gen` with stop code `code`; false when nothing (or another run) is armed. */
function kick(gen: number, code: number): boolean {
  if (gen <= 0 || Atomics.compareExchange(ctl, CTL.STATE, gen, -1) !== gen) return false;
  try {
    Atomics.store(ctl, CTL.STOP, code);
    const addr = BigInt(Atomics.load(ctl, CTL.RUN_LO) >>> 0) | (BigInt(Atomics.load(ctl, CTL.RUN_HI) >>> 0) << 32n);
    const p = Deno.UnsafePointer.create(addr);
    if (p) new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p, 8))[O_IMMEDIATE] = 1;
    const l = libc();
    l.tgkill(l.getpid(), Atomics.load(ctl, CTL.TID), KICK_SIGNO);
    Atomics.add(ctl, CTL.KICKS, 1);
  } finally {
    Atomics.store(ctl, CTL.STATE, gen);
  }
  return true;
}

function onSigint(): void {
  const gen = Atomics.load(ctl, CTL.STATE);
  if (gen > 0 && Atomics.load(ctl, CTL.INTERRUPTIBLE)) kick(gen, STOP_CODE.interrupt);
}

async function loop(): Promise<void> {
  for (;;) {
    const bell = Atomics.load(ctl, CTL.DOORBELL);
    const gen = Atomics.load(ctl, CTL.STATE);
    const armed = gen > 0;
    const wantSigint = armed && Atomics.load(ctl, CTL.INTERRUPTIBLE) === 1;
    if (wantSigint !== sigintOn) {
      if (wantSigint) Deno.addSignalListener("SIGINT", onSigint);
      else Deno.removeSignalListener("SIGINT", onSigint);
      sigintOn = wantSigint;
    }
    let wait = Infinity;
    if (armed && Atomics.load(ctl, CTL.STOP) === 0) {
      const d = deadline[0];
      if (d > 0) {
        wait = d - now();
        if (wait <= 0) {
          kick(gen, Atomics.load(ctl, CTL.DEADLINE_KIND) || STOP_CODE.timeout);
          continue;
        }
      }
    }
    const r = Atomics.waitAsync(ctl, CTL.DOORBELL, bell, wait === Infinity ? undefined : Math.ceil(wait));
    if (r.async) await r.value;
  }
}

(self as unknown as { onmessage: (e: MessageEvent<{ sab: SharedArrayBuffer }>) => void }).onmessage = (e) => {
  ctl = new Int32Array(e.data.sab, 0, CTL.INTS);
  deadline = new Float64Array(e.data.sab, CTL.INTS * 4, 1);
  // A kick that lands while the main thread is outside KVM_RUN must not kill the process.
  Deno.addSignalListener(KICK_SIGNAL, noop);
  Atomics.store(ctl, CTL.READY, 1);
  Atomics.notify(ctl, CTL.READY);
  loop();
};
