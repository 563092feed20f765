/**
 * Rows 2–4: the exit loop and set-up, through mod.ts's runGuest — a PIO exit round trip, an
 * MMIO read round trip with data returned to the guest, and VM + 2 MiB gmem + memslot + vCPU
 * created and run to HLT.
 * @module
 */

import { EXIT, type GuestSpec, IOCTL, openKvm, runGuest, type Vcpu, type Vm } from "../../mod.ts";
import { LIBC_PATH } from "../../ffi/libc.ts";
import { HLT, MMIO_GPA, MMIO_LOOP, MMIO_VALUE, PIO_LOOP, PIO_PORT } from "../guests.ts";
import { runBaseline, timeBatches } from "../measure.ts";
import { type Row, sideBySide } from "./row.ts";
import { summarizeRounds } from "../stats.ts";
import { backingFor, cBackingArg, describeBacking } from "./memory.ts";

const MIB = 1n << 20n;

/**
 * Repetitions of rows 2 and 3: batches per round, rounds, exits per batch. The host's exit cost
 * moves in phases (~7 µs, then ~10 µs, for seconds at a time), so each round is one batch a
 * side, C then kvmsh ~0.2 s apart, and 48 of them: with 16 rounds of three batches the median of
 * the rounds' ratios spread over 0.96–1.06 between runs with no change to either side; with 48
 * of one, 1.02–1.04 (three runs each, interleaved, 2026-12-07).
 */
const exitSizes = (quick: boolean) => ({ reps: 1, rounds: quick ? 2 : 48, per: quick ? 5_000 : 10_000 });

/**
 * The kvmsh side of an exit row: `runGuest` of `image` for exactly `n` exits a batch (maxExits),
 * each of which must have reached the handler (`seen` counts them).
 */
function exitBatches(
  vm: Vm,
  what: string,
  image: Uint8Array,
  handlers: NonNullable<GuestSpec["handlers"]>,
  seen: { n: number },
  reps: number,
  per: number,
) {
  return () =>
    timeBatches("kvmsh", reps, per, (n) => {
      seen.n = 0;
      const r = runGuest(vm, { image, handlers, maxExits: n, interruptible: false });
      if (r.stop !== "max-exits" || seen.n !== n) throw new Error(`${what} loop stopped: ${r.stop} after ${seen.n}`);
    });
}

/**
 * The same exits from a bare FFI loop in this process (KVM_RUN through a stub of its own, the exit
 * reason checked in the mapped kvm_run as the C side does, `answer` for MMIO read data), against
 * kvmsh's loop `k`, in alternating rounds: what kvmsh's own loop costs per exit, apart from what
 * any Deno process pays (its threads, libc binding).
 */
function vsBareLoop(
  vm: Vm,
  rounds: number,
  reps: number,
  per: number,
  k: () => ReturnType<typeof timeBatches>,
  reason: number,
  answer: ((x: Vcpu["exit"]) => void) | undefined,
  row: { id: string; name: string },
) {
  const vcpu = vm.vcpus[0];
  const ioctl = Deno.dlopen(LIBC_PATH, {
    ioctl: { parameters: ["i32", "u32", "u64"], result: "i32" },
  }).symbols.ioctl;
  const fd = vcpu.fd;
  const run = IOCTL.KVM_RUN;
  const x = vcpu.exit;
  const ks: ReturnType<typeof timeBatches>[] = [];
  const raw: ReturnType<typeof timeBatches>[] = [];
  for (let round = 0; round < rounds; round++) {
    raw.push(timeBatches("raw FFI", reps, per, (n) => {
      for (let i = 0; i < n; i++) {
        if (ioctl(fd, run, 0n) < 0 || x.rawReason !== reason) throw new Error(`KVM_RUN: not exit ${reason}`);
        if (answer) answer(x);
      }
    }));
    ks.push(k());
  }
  return summarizeRounds(row.id, row.name, "ns", ks, raw, undefined, "kvmsh's own per-exit cost");
}

export const pioRow: Row = {
  id: "2",
  name: "PIO exit round trip (out → host → re-enter)",
  unit: "ns",
  target: { kind: "max", value: 1.05 },
  async run(ctx) {
    const { reps, rounds, per } = exitSizes(ctx.quick);
    using kvm = openKvm();
    using vm = kvm.createVm();
    const seen = { n: 0 };
    const handlers = { ports: { [PIO_PORT]: () => (seen.n++, "continue" as const) } };
    const k = exitBatches(vm, "PIO", PIO_LOOP, handlers, seen, reps, per);
    const main = await sideBySide(this, rounds, () => runBaseline(ctx.bins.pio, reps, per), k);
    const vsRaw = vsBareLoop(vm, rounds, reps, per, k, EXIT.IO, undefined, {
      id: "2b",
      name: "PIO exit: kvmsh loop vs bare FFI KVM_RUN loop (same process)",
    });
    return [main, vsRaw];
  },
};

export const mmioRow: Row = {
  id: "3",
  name: "MMIO read exit round trip (data to guest)",
  unit: "ns",
  target: { kind: "max", value: 1.05 },
  async run(ctx) {
    const { reps, rounds, per } = exitSizes(ctx.quick);
    using kvm = openKvm();
    using vm = kvm.createVm();
    const seen = { n: 0 };
    const handlers = {
      mmio: (x: { mmioAddress: number; mmioIsWrite: boolean; mmioValue: number }) => {
        if (x.mmioAddress !== MMIO_GPA || x.mmioIsWrite) return "stop" as const;
        x.mmioValue = MMIO_VALUE;
        seen.n++;
        return "continue" as const;
      },
    };
    const k = exitBatches(vm, "MMIO", MMIO_LOOP, handlers, seen, reps, per);
    const main = await sideBySide(this, rounds, () => runBaseline(ctx.bins.mmio, reps, per), k);
    const vsRaw = vsBareLoop(vm, rounds, reps, per, k, EXIT.MMIO, (x) => x.mmioValue = MMIO_VALUE, {
      id: "3b",
      name: "MMIO exit: kvmsh loop vs bare FFI KVM_RUN loop (same process)",
    });
    return [main, vsRaw];
  },
};

export const setupRow: Row = {
  id: "4",
  name: "VM + 2 MiB gmem + memslot + vCPU, run to HLT",
  unit: "ns",
  target: { kind: "max", value: 1.5 },
  async run(ctx) {
    const reps = 3;
    const per = ctx.quick ? 10 : 30;
    using kvm = openKvm();
    const backing = (() => {
      using vm = kvm.createVm();
      return backingFor(vm);
    })();
    const cycle = (interruptible: boolean) => {
      using vm = kvm.createVm();
      if (backing.kind === "gmem") {
        const gmem = vm.createGuestMemfd(2n * MIB, "mmap,init-shared");
        vm.addMemslot({ slot: 0, gpa: 0n, size: 2n * MIB, gmem });
      } else {
        vm.addMemslot({ slot: 0, gpa: 0n, size: 2n * MIB, userspace: "anon" });
      }
      const r = runGuest(vm, { image: HLT, mode: "real", interruptible });
      if (r.exit.name !== "HLT") throw new Error(`expected HLT, got ${r.exit.name}`);
    };
    const side = (interruptible: boolean, n: number) => () =>
      timeBatches("kvmsh", reps, n, (k) => {
        for (let i = 0; i < k; i++) cycle(interruptible);
      });
    const c = () => runBaseline(ctx.bins.setup, reps, per, cBackingArg(backing));
    const { name, note } = describeBacking(this.name, backing, "in-process, run not interruptible");
    const plain = await sideBySide({ ...this, name }, ctx.quick ? 2 : 6, c, side(false, per), note);
    // runGuest's default: Ctrl-C can stop the run. The kick installs its SIGINT handler for the
    // run and restores the old disposition after it (two sigaction calls; no Worker, no thread).
    const interruptible = await sideBySide(
      { ...this, id: "4b", name: `${name}, interruptible (default)`, target: undefined },
      1,
      c,
      side(true, Math.max(3, Math.round(per / 3))),
      describeBacking(this.name, backing, "SIGINT handler set and restored per run").note,
    );
    return [plain, interruptible];
  },
};
