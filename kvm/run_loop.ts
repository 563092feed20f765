/**
 * The exit loop: KVM_RUN, decode the exit in place, dispatch, repeat — until a handler or the
 * guest ABI says stop, or the kick (timeout, deadline, Ctrl-C; kick.ts) interrupts KVM_RUN.
 *
 * How to use (REPL engineer): `const cpu = vm.createVcpu()` is `vcpu create`; `regs` is
 * `cpu.getRegs()` (bigints in kvm_regs order, names in REG_NAMES), `regs set r=v …` is
 * `cpu.setRegs({rip: 0x1000n})` (partial: the rest keep their values), `sregs` is
 * `cpu.getSregs()` (`setSregs({cs: {base: 0n}})` is partial too). `run guest.bin [--mode]
 * [--timeout] [--memory] …` is one call: `runGuest(vm, {image | elf | asm, mode, memory:
 * "anon" | "gmem:mmap,init-shared", userspace: "none" | "gmem" | "anon", timeoutMs, args,
 * handlers, onConsole})` (kvm/run_guest.ts; `guestPath("fill")` names a library guest). It makes
 * the memslot at GPA 0 if missing, the vCPU if missing, loads, then calls {@link runVcpu}.
 * `continue` is `runVcpu(cpu, {timeoutMs})`; `step [n]` is `stepVcpu(cpu, {count: n})`
 * (KVM_SET_GUEST_DEBUG single-step until n DEBUG exits, answering the exits in between; each
 * step's RIP in `steps`; single-step off again after). Both go on from wherever the last run
 * stopped; `cpu.code()` gives RIP, its linear address and GPA and the instruction bytes there. Every result has `exit` (the last exit decoded: show it
 * with `formatExit(r.exit)`, JSON with `exitToJSON(r.exit)`), `stop` (why the loop ended: `exit`
 * when an exit kvmsh does not resume from — HLT, SHUTDOWN, MMIO, INTERNAL_ERROR, DEBUG…;
 * `exit-code`, `done`, `assert`, `unhandled-io`, `ucall`, `handler`, `max-exits`, `timeout`,
 * `deadline`, `interrupt`), `console`, `exitCode` ({value, status} as QEMU's isa-debug-exit),
 * `ucalls`, `conversions`, `exits`, `elapsedMs`. Runs are interruptible by default: Ctrl-C stops
 * the guest (stop `interrupt`) through the kick's SIGINT handler (no Worker); where your code has
 * a Deno SIGINT listener, the kick passes the signal on and Deno queues it for the listener,
 * which runs after the run returns — ignore one SIGINT right after a run whose stop is
 * `interrupt`. The VM and vCPU stay usable after any stop. Long-mode page tables identity-map the
 * whole low 512 GiB (an access without a memslot is an MMIO exit) and every memslot that exists
 * when the guest is loaded.
 * @module
 */

import { EXIT } from "../ffi/uapi.ts";
import { describeExit, type ExitInfo } from "./exit_decode.ts";
import type { ExitView } from "./exit_view.ts";
import { type Conversion, type ExitCode, GuestAbi, type Ucall } from "./guest_abi.ts";
import { type ArmedRun, armWatchdog, type StopCause } from "./kick.ts";
import type { Vcpu } from "./vcpu.ts";
import { CR0, EFER } from "./loaders/long_mode.ts";
import { hex } from "./units.ts";

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
  /**
   * Guest ABI state to use (and keep across runs). Default: the vCPU's own ({@link vcpuGuestAbi}):
   * device registers kept from its last run, console, ucalls and exit code fresh.
   */
  abi?: GuestAbi;
  /**
   * Stop after this many milliseconds (stop `timeout`). 0 (like leaving it out) means no timeout
   * of the run's own: it goes on until the guest stops, Ctrl-C, or the scenario deadline. It never
   * outlasts `deadline` (or the scenario deadline): when that comes first, the stop is `deadline`.
   */
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
  /** Sees every exit right after KVM_RUN returns, before any handler (a trace; must not keep `x`). */
  onExit?: (x: ExitView, vcpu: Vcpu) => void;
}

/** What a run did. */
export interface RunResult {
  /** The last exit, decoded. */
  exit: ExitInfo;
  /** Why the loop stopped. */
  stop: StopReason;
  /** Console output of this run (0xE9, COM1, ucall prints). */
  console: string;
  /** isa-debug-exit value/status, when the guest wrote port 0xF4 during this run (the last value it wrote). */
  exitCode?: ExitCode;
  ucalls: Ucall[];
  conversions: Conversion[];
  /** Exits handled (KVM_RUN returns). */
  exits: number;
  elapsedMs: number;
}

let scenarioDeadline = 0;

/**
 * Sets (or clears with 0/undefined) the deadline every run without an explicit `deadline` runs
 * under (a scenario runner's budget); a run's own `timeoutMs` does not outlast it.
 */
export function setScenarioDeadline(absMs: number | undefined): void {
  scenarioDeadline = absMs ?? 0;
}

/** `performance.timeOrigin + performance.now()`: the clock deadlines use. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Each vCPU's guest ABI state between runs given none (see {@link vcpuGuestAbi}). */
const vcpuAbis = new WeakMap<Vcpu, GuestAbi>();

/**
 * The guest ABI state the runs of `vcpu` share when a run is given none: the emulated devices'
 * registers (the serial port's line control, divisor, scratch) stay as the guest set them from
 * one run to the next — a guest stopped at `hlt` and resumed (`continue`, `step`) finds its port
 * as it left it — while each such run starts with no console text, ucalls, conversions or exit
 * code of earlier runs. `fresh` replaces it with a new one (runGuest: a new guest image).
 */
export function vcpuGuestAbi(vcpu: Vcpu, fresh = false): GuestAbi {
  let abi = fresh ? undefined : vcpuAbis.get(vcpu);
  if (abi === undefined) {
    abi = new GuestAbi();
    vcpuAbis.set(vcpu, abi);
  }
  return abi;
}

/** Which handler of {@link ExitHandlers} takes which exit reason (the rest go to `other`). */
const HANDLER_FOR: Readonly<Record<number, Exclude<keyof ExitHandlers, "ports" | "other">>> = {
  [EXIT.IO]: "io",
  [EXIT.MMIO]: "mmio",
  [EXIT.HLT]: "hlt",
  [EXIT.SHUTDOWN]: "shutdown",
  [EXIT.HYPERCALL]: "hypercall",
  [EXIT.MEMORY_FAULT]: "memoryFault",
  [EXIT.DEBUG]: "debug",
  [EXIT.INTR]: "intr",
  [EXIT.INTERNAL_ERROR]: "internalError",
  [EXIT.FAIL_ENTRY]: "failEntry",
  [EXIT.SYSTEM_EVENT]: "systemEvent",
};

/** What a read from nothing gives (an unanswered MMIO read, as an unhandled IN port). */
const ALL_ONES = 0xffff_ffff_ffff_ffffn;

/** Exit reasons the table covers (KVM_EXIT_* numbers are small). */
const TABLE_SIZE = 64;

/**
 * Runs `vcpu` until something stops it. The hot path is one synchronous KVM_RUN, a table
 * lookup by exit reason and the handler; nothing is allocated per exit.
 */
export function runVcpu(vcpu: Vcpu, opts: RunOptions = {}): RunResult {
  const h = opts.handlers ?? {};
  let abi = opts.abi;
  if (abi === undefined) {
    // The vCPU's own: its devices' registers as the last run left them, nothing else of it.
    abi = vcpuGuestAbi(vcpu);
    abi.reset();
    abi.onConsole = opts.onConsole;
    abi.onUcall = opts.onUcall;
  } else {
    if (opts.onConsole) abi.onConsole = opts.onConsole;
    if (opts.onUcall) abi.onUcall = opts.onUcall;
  }
  const table: (ExitHandler | undefined)[] = [];
  for (let r = 0; r < TABLE_SIZE; r++) {
    const key = HANDLER_FOR[r];
    table.push((key && h[key]) ?? h.other);
  }
  const ports = new Map<number, ExitHandler>(Object.entries(h.ports ?? {}).map(([p, f]) => [Number(p), f]));
  const hasPorts = ports.size > 0;
  const startUcalls = abi.ucalls.length;
  const startConv = abi.conversions.length;
  const startConsole = abi.consoleLength;
  // An ABI kept across runs keeps its last exit code: this run reports one only if its guest wrote it.
  const startExitCode = abi.exitCode;
  const maxExits = opts.maxExits ?? Infinity;
  const onExit = opts.onExit;

  const t0 = nowMs();
  const timeoutMs = opts.timeoutMs;
  if (timeoutMs !== undefined && !(timeoutMs >= 0 && Number.isFinite(timeoutMs))) {
    throw new RangeError(`timeoutMs must be finite and ≥ 0 (0: no timeout), got ${timeoutMs}`);
  }
  if (opts.deadline !== undefined && !Number.isFinite(opts.deadline)) {
    throw new RangeError(`deadline must be a finite time (ms), got ${opts.deadline}`);
  }
  // The run's own timeout never outlasts the deadline it runs under (an explicit one, else the
  // scenario's): whichever comes first stops it, and the stop names which one it was.
  const outer = opts.deadline ?? scenarioDeadline;
  const own = timeoutMs !== undefined && timeoutMs > 0 ? t0 + timeoutMs : 0;
  const timed = own > 0 && (outer <= 0 || own <= outer);
  const deadline = timed ? own : outer;
  const interruptible = opts.interruptible ?? true;
  const x = vcpu.exit;
  x.immediateExit = 0;
  let armed: ArmedRun | undefined;
  if (deadline > 0 || interruptible) {
    armed = armWatchdog({
      tid: vcpu.tid,
      runAddress: vcpu.runAddress,
      deadline,
      deadlineKind: timed ? "timeout" : "deadline",
      interruptible,
    });
  }

  let stop: StopReason | undefined;
  let exits = 0;
  try {
    while (stop === undefined) {
      if (deadline > 0 && exits > 0 && (exits & 1023) === 0 && nowMs() >= deadline) {
        // The watchdog kicks the vCPU; this covers a guest that exits so often it never blocks.
        stop = timed ? "timeout" : "deadline";
        break;
      }
      if (armed !== undefined && (exits & 63) === 63) {
        // A kick can be lost when the loop is outside KVM_RUN (single-stepping spends most of its
        // time here): its signal lands in userspace. The stop code stays set and the deadline
        // stays passed, so look at them now and then.
        const why = armed.stopped();
        if (why) {
          stop = why;
          break;
        }
      }
      vcpu.run();
      exits++;
      if (onExit) onExit(x, vcpu);
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
        let why = armed?.stopped();
        if (!why) {
          // A stray signal: run on. Look again after clearing immediate_exit: a Ctrl-C kick that
          // set it just before is then seen here rather than lost.
          x.immediateExit = 0;
          why = armed?.stopped();
        }
        if (why) stop = why;
      } else {
        stop = "exit";
        // An MMIO read nobody answered: a later KVM_RUN (continue, step) completes it with
        // kvm_run's data, which held the last exit's bytes. Give it what an unbacked bus returns.
        if (reason === EXIT.MMIO && !x.mmioIsWrite) x.mmioData64 = ALL_ONES;
      }
      if (stop === undefined && exits >= maxExits) stop = "max-exits";
    }
  } finally {
    armed?.disarm();
    x.immediateExit = 0;
    // The vCPU's own state outlives the run: it keeps no callback (nor what it captured).
    if (vcpuAbis.get(vcpu) === abi) abi.onConsole = abi.onUcall = undefined;
  }
  return {
    exit: describeExit(x),
    stop,
    console: abi.consoleSince(startConsole),
    exitCode: abi.exitCode !== startExitCode ? abi.exitCode : undefined,
    ucalls: abi.ucalls.slice(startUcalls),
    conversions: abi.conversions.slice(startConv),
    exits,
    elapsedMs: nowMs() - t0,
  };
}

/** Options of {@link stepVcpu}: those of {@link runVcpu} (its `handlers.debug` is the stepper's) plus a count. */
export interface StepOptions extends RunOptions {
  /** Instructions to single-step (default 1). */
  count?: number;
  /** Keep only the records of the last this many steps (default: all), for long step runs. */
  keepSteps?: number;
}

/** One finished single-step: where the vCPU is now and the exits answered on the way. */
export interface StepRecord {
  /** RIP after the step (KVM_GET_REGS at the DEBUG exit). */
  rip: bigint;
  /** The DEBUG exit's pc: the linear address of the next instruction. */
  pc: bigint;
  /** Exits before the DEBUG exit that the loop answered and resumed from (IO, MMIO, INTR …). */
  exits: ExitInfo[];
}

/** What {@link stepVcpu} did: a run result plus one record per finished step. */
export interface StepResult extends RunResult {
  /** One record per finished step (the last `keepSteps` of them). */
  steps: StepRecord[];
  /** Steps finished (more than `steps.length` when records were dropped). */
  stepped: number;
  /** Exits after the last finished step (the run stopped before the next DEBUG exit: HLT, exit code, timeout …). */
  trail: ExitInfo[];
}

/**
 * Single-steps `vcpu` `count` instructions from where it stands: KVM_SET_GUEST_DEBUG
 * (ENABLE|SINGLESTEP), then the exit loop until that many DEBUG exits, the guest ABI answering
 * the exits in between (an `out 0xE9` shows as an IO exit on the way). Stops early for what
 * stops {@link runVcpu} (stop `exit` with a non-DEBUG exit, `exit-code`, `timeout`, `interrupt`
 * …); `stop` is `exit` with a DEBUG last exit when every step finished. Single-step is switched
 * off again afterwards unless it was on before, so a later run or `continue` is not stepped.
 * Not the hot path: each exit is decoded into the result.
 */
export function stepVcpu(vcpu: Vcpu, opts: StepOptions = {}): StepResult {
  const count = opts.count ?? 1;
  if (!Number.isSafeInteger(count) || count < 1) throw new RangeError(`step count must be ≥ 1, got ${count}`);
  const keep = opts.keepSteps ?? Infinity;
  if (!(keep >= 1)) throw new RangeError(`keepSteps must be ≥ 1, got ${keep}`);
  let steps: StepRecord[] = [];
  let stepped = 0;
  let trail: ExitInfo[] = [];
  const onExit = opts.onExit;
  const wasOn = vcpu.singleStep;
  if (!wasOn) vcpu.setGuestDebug({ singleStep: true });
  let r: RunResult;
  try {
    r = runVcpu(vcpu, {
      ...opts,
      handlers: {
        ...opts.handlers,
        debug: (x) => {
          steps.push({ rip: vcpu.getReg("rip"), pc: x.debugPc, exits: trail });
          if (steps.length >= 2 * keep) steps = steps.slice(-keep);
          trail = [];
          return ++stepped >= count ? STOP : CONTINUE;
        },
      },
      onExit: (x, v) => {
        if (x.reason !== EXIT.DEBUG) trail.push(describeExit(x));
        onExit?.(x, v);
      },
    });
  } finally {
    if (!wasOn && vcpu.open) vcpu.setGuestDebug({});
  }
  const done = r.stop === "handler" && stepped >= count && r.exit.reason === EXIT.DEBUG;
  if (steps.length > keep) steps = steps.slice(-keep);
  return { ...r, stop: done ? "exit" : r.stop, steps, stepped, trail };
}

/** Where a vCPU's next instruction is, and its bytes when guest memory there is readable. */
export interface CodeAt {
  rip: bigint;
  /** `real` (CR0.PE clear), `protected`, or `long` (EFER.LMA and CS.L). */
  mode: "real" | "protected" | "long";
  cs: { selector: number; base: bigint };
  /** CS.base + IP (real and protected mode), RIP in 64-bit mode. */
  linear: bigint;
  /** The guest physical address: the linear address, or KVM_TRANSLATE's answer when CR0.PG is set. */
  gpa?: bigint;
  /** Up to the asked length, read fault-safely through the memslot's host mapping (stops at the slot's or page's end). */
  bytes?: Uint8Array;
  /** Why `gpa` or `bytes` is missing. */
  note?: string;
}

/** Finds `vcpu`'s next instruction (see {@link CodeAt}); reading never faults the process. */
export function codeAt(vcpu: Vcpu, length = 15): CodeAt {
  const rip = vcpu.getReg("rip");
  const s = vcpu.getSregs();
  const paged = (s.cr0 & CR0.PG) !== 0n;
  const mode = (s.cr0 & CR0.PE) === 0n ? "real" : (s.efer & EFER.LMA) !== 0n && s.cs.l ? "long" : "protected";
  const linear = mode === "long" ? rip : (s.cs.base + (rip & (mode === "real" ? 0xffffn : 0xffffffffn))) & 0xffffffffn;
  const at: CodeAt = { rip, mode, cs: { selector: s.cs.selector, base: s.cs.base }, linear };
  let gpa = linear;
  if (paged) {
    try {
      const t = vcpu.translate(linear);
      if (!t.valid) {
        at.note = `linear ${hex(linear)} is not mapped by the guest's page tables (KVM_TRANSLATE valid=0)`;
        return at;
      }
      gpa = t.physical;
    } catch (e) {
      at.note = (e as Error).message;
      return at;
    }
  }
  at.gpa = gpa;
  const slot = vcpu.vm.memslots.find((m) => m.contains(gpa));
  if (!slot) {
    at.note = `no memslot at GPA ${hex(gpa)}`;
    return at;
  }
  let end = slot.gpa + slot.size;
  if (paged) end = end < (gpa | 0xfffn) + 1n ? end : (gpa | 0xfffn) + 1n;
  const n = Number(end - gpa < BigInt(length) ? end - gpa : BigInt(length));
  try {
    at.bytes = vcpu.vm.readGuest(gpa, n);
  } catch (e) {
    at.note = (e as Error).message;
  }
  return at;
}
