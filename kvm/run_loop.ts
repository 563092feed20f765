/**
 * The exit loop: KVM_RUN, decode the exit in place, dispatch, repeat — until a handler or the
 * guest ABI says stop, or the watchdog (timeout, deadline, Ctrl-C) kicks the vCPU.
 *
 * How to use (REPL engineer): `const cpu = vm.createVcpu()` is `vcpu create`; `regs` is
 * `cpu.getRegs()` (bigints in kvm_regs order, names in REG_NAMES), `regs set r=v …` is
 * `cpu.setRegs({rip: 0x1000n})` (partial: the rest keep their values), `sregs` is
 * `cpu.getSregs()` (`setSregs({cs: {base: 0n}})` is partial too). `run guest.bin [--mode]
 * [--timeout] [--memory] …` is one call: `runGuest(vm, {image | elf | asm, mode, memory:
 * "anon" | "gmem:mmap,init-shared", userspace: "none" | "gmem" | "anon", timeoutMs, args,
 * handlers, onConsole})` (kvm/run_guest.ts; `guestPath("fill")` names a library guest). It makes
 * the memslot at GPA 0 if missing, the vCPU if missing, loads, then calls {@link runVcpu}.
 * `continue` is `runVcpu(cpu, {timeoutMs})`; `step` is `cpu.setGuestDebug({singleStep: true})`
 * then `runVcpu(cpu)` (stops at the DEBUG exit; single-step works on this host) and
 * `cpu.setGuestDebug({})` to leave it. Every result has `exit` (the last exit decoded: show it
 * with `formatExit(r.exit)`, JSON with `exitToJSON(r.exit)`), `stop` (why the loop ended: `exit`
 * when an exit kvmsh does not resume from — HLT, SHUTDOWN, MMIO, INTERNAL_ERROR, DEBUG…;
 * `exit-code`, `done`, `assert`, `unhandled-io`, `ucall`, `handler`, `max-exits`, `timeout`,
 * `deadline`, `interrupt`), `console`, `exitCode` ({value, status} as QEMU's isa-debug-exit),
 * `ucalls`, `conversions`, `exits`, `elapsedMs`. Runs are interruptible by default: Ctrl-C stops
 * the guest (stop `interrupt`) through the watchdog Worker; Deno also queues that SIGINT for
 * your own listener, which runs after the run returns — ignore one SIGINT right after a run
 * whose stop is `interrupt`. The VM and vCPU stay usable after any stop. Long-mode page tables
 * cover the memslots that exist when the guest is loaded.
 * @module
 */

import { EXIT } from "../ffi/uapi.ts";
import { describeExit, type ExitInfo } from "./exit_decode.ts";
import type { ExitView } from "./exit_view.ts";
import { type Conversion, type ExitCode, GuestAbi, type Ucall } from "./guest_abi.ts";
import { type ArmedRun, armWatchdog, type StopCause } from "./kick.ts";
import type { Vcpu } from "./vcpu.ts";

/** A handler's answer: keep running, stop, or `undefined` to let the default handling decide. */
export type Verdict = "continue" | "stop" | undefined | void;
/** Keep running. */
export const CONTINUE = "continue";
/** Stop the loop (stop reason `handler`). */
export const STOP = "stop";

/** Handles one exit. Reads (and for IN / MMIO reads, writes) the exit through `x`; must not keep `x`. */
export type ExitHandler = (x: ExitView, vcpu: Vcpu) => Verdict;

/**
 * Pluggable handlers; each is tried before the default handling of its exit kind. `ports[n]`
 * answers I/O on port n (before `io`); `mmio` can supply read data (`x.mmioValue = …`).
 */
export interface ExitHandlers {
  ports?: Record<number, ExitHandler>;
  io?: ExitHandler;
  mmio?: ExitHandler;
  hlt?: ExitHandler;
  shutdown?: ExitHandler;
  hypercall?: ExitHandler;
  memoryFault?: ExitHandler;
  debug?: ExitHandler;
  intr?: ExitHandler;
  internalError?: ExitHandler;
  failEntry?: ExitHandler;
  systemEvent?: ExitHandler;
  /** Any exit kind without a handler above. */
  other?: ExitHandler;
}

/** Why a run ended. */
export type StopReason =
  | "exit"
  | "exit-code"
  | "done"
  | "assert"
  | "unhandled-io"
  | "ucall"
  | "handler"
  | "max-exits"
  | StopCause;

/** Options of {@link runVcpu}. */
export interface RunOptions {
  handlers?: ExitHandlers;
  /** Guest ABI state to use (and keep across runs); a fresh one by default. */
  abi?: GuestAbi;
  /** Stop after this many milliseconds (stop `timeout`). */
  timeoutMs?: number;
  /** Absolute deadline (`performance.timeOrigin + performance.now()` ms; stop `deadline`). Default: the scenario deadline. */
  deadline?: number;
  /** Ctrl-C stops the run (default true; false leaves SIGINT alone, e.g. for a benchmark loop). */
  interruptible?: boolean;
  /** Stop after this many exits. */
  maxExits?: number;
  /** Called with each console byte (live output); sets `abi.onConsole`. */
  onConsole?: (byte: number) => void;
  /** Called with each ucall; `stop` ends the run (stop `ucall`); sets `abi.onUcall`. */
  onUcall?: GuestAbi["onUcall"];
}

/** What a run did. */
export interface RunResult {
  /** The last exit, decoded. */
  exit: ExitInfo;
  /** Why the loop stopped. */
  stop: StopReason;
  /** Console output of this run (0xE9, COM1, ucall prints). */
  console: string;
  /** isa-debug-exit value/status, when the guest wrote port 0xF4. */
  exitCode?: ExitCode;
  ucalls: Ucall[];
  conversions: Conversion[];
  /** Exits handled (KVM_RUN returns). */
  exits: number;
  elapsedMs: number;
}

let scenarioDeadline = 0;

/** Sets (or clears with 0/undefined) the deadline every run without its own uses (a scenario runner's budget). */
export function setScenarioDeadline(absMs: number | undefined): void {
  scenarioDeadline = absMs ?? 0;
}

/** `performance.timeOrigin + performance.now()`: the clock deadlines use. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

function pick(h: ExitHandlers, reason: number): ExitHandler | undefined {
  switch (reason) {
    case EXIT.IO:
      return h.io;
    case EXIT.MMIO:
      return h.mmio;
    case EXIT.HLT:
      return h.hlt;
    case EXIT.SHUTDOWN:
      return h.shutdown;
    case EXIT.HYPERCALL:
      return h.hypercall;
    case EXIT.MEMORY_FAULT:
      return h.memoryFault;
    case EXIT.DEBUG:
      return h.debug;
    case EXIT.INTR:
      return h.intr;
    case EXIT.INTERNAL_ERROR:
      return h.internalError;
    case EXIT.FAIL_ENTRY:
      return h.failEntry;
    case EXIT.SYSTEM_EVENT:
      return h.systemEvent;
  }
  return h.other;
}

/** Exit reasons the table covers (KVM_EXIT_* numbers are small). */
const TABLE_SIZE = 64;

/**
 * Runs `vcpu` until something stops it. The hot path is one synchronous KVM_RUN, a table
 * lookup by exit reason and the handler; nothing is allocated per exit.
 */
export function runVcpu(vcpu: Vcpu, opts: RunOptions = {}): RunResult {
  const h = opts.handlers ?? {};
  const abi = opts.abi ?? new GuestAbi();
  if (opts.onConsole) abi.onConsole = opts.onConsole;
  if (opts.onUcall) abi.onUcall = opts.onUcall;
  const table: (ExitHandler | undefined)[] = [];
  for (let r = 0; r < TABLE_SIZE; r++) table.push(pick(h, r) ?? h.other);
  const ports = new Map<number, ExitHandler>(Object.entries(h.ports ?? {}).map(([p, f]) => [Number(p), f]));
  const hasPorts = ports.size > 0;
  const startUcalls = abi.ucalls.length;
  const startConv = abi.conversions.length;
  const startConsole = abi.console.length;
  const maxExits = opts.maxExits ?? Infinity;

  const t0 = nowMs();
  const deadline = opts.timeoutMs !== undefined ? t0 + opts.timeoutMs : (opts.deadline ?? scenarioDeadline);
  const interruptible = opts.interruptible ?? true;
  const x = vcpu.exit;
  x.immediateExit = 0;
  let armed: ArmedRun | undefined;
  if (deadline > 0 || interruptible) {
    armed = armWatchdog({
      tid: vcpu.tid,
      runAddress: vcpu.runAddress,
      deadline,
      deadlineKind: opts.timeoutMs !== undefined ? "timeout" : "deadline",
      interruptible,
    });
  }

  let stop: StopReason | undefined;
  let exits = 0;
  try {
    while (stop === undefined) {
      if (deadline > 0 && exits > 0 && (exits & 1023) === 0 && nowMs() >= deadline) {
        // The watchdog kicks the vCPU; this covers a guest that exits so often it never blocks.
        stop = opts.timeoutMs !== undefined ? "timeout" : "deadline";
        break;
      }
      vcpu.run();
      exits++;
      const reason = x.reason;
      let v: Verdict;
      if (reason === EXIT.IO && hasPorts) {
        const ph = ports.get(x.ioPort);
        if (ph) v = ph(x, vcpu);
      }
      if (v === undefined) {
        const f = reason >= 0 && reason < TABLE_SIZE ? table[reason] : h.other;
        if (f) v = f(x, vcpu);
      }
      if (v === CONTINUE) {
        if (exits >= maxExits) stop = "max-exits";
        continue;
      }
      if (v === STOP) {
        stop = "handler";
        break;
      }
      // Default handling.
      if (reason === EXIT.IO) {
        const r = abi.io(x, vcpu);
        if (r !== true) stop = r ?? "exit";
      } else if (reason === EXIT.HYPERCALL) {
        if (abi.hypercall(x, vcpu) !== true) stop = "exit";
      } else if (reason === EXIT.INTR) {
        const why = armed?.stopped();
        if (why) stop = why;
        else x.immediateExit = 0; // a stray signal: run on
      } else {
        stop = "exit";
      }
      if (stop === undefined && exits >= maxExits) stop = "max-exits";
    }
  } finally {
    armed?.disarm();
    x.immediateExit = 0;
  }
  const text = abi.console;
  return {
    exit: describeExit(x),
    stop,
    console: text.slice(startConsole),
    exitCode: abi.exitCode,
    ucalls: abi.ucalls.slice(startUcalls),
    conversions: abi.conversions.slice(startConv),
    exits,
    elapsedMs: nowMs() - t0,
  };
}
