/**
 * One running scenario: its result lines, steps, cleanup, expected failures (known host
 * divergences), the kernel log patterns it expects, and a lazily opened `/dev/kvm`.
 * Expectations (expect.ts) and requirements (requires.ts) record into it; every line and note is
 * handed to the runner's hooks as soon as it is known (streamed KTAP).
 *
 * The body has a deadline and can be interrupted (Ctrl-C): the first line recorded (or step ended)
 * after either is reported as `deadline exceeded …` (a failure) or `interrupted` instead, and a
 * {@link ScenarioStopped} unwinds the rest of the body to the runner, which runs the cleanup.
 * @module
 */

import { Kvm, KVM_DEVICE, kvmDevicePath } from "../kvm/kvm.ts";
import type { Vm } from "../kvm/vm.ts";
import { KvmError } from "../kvm/errors.ts";
import { nowMs } from "../kvm/run_loop.ts";
import { KVM_API_VERSION } from "../kvm/abi.ts";
import type { ResultLine, Status } from "./result.ts";
import { registry } from "./registry.ts";
import { ExpectationFailed, ScenarioStopped, SkipSignal, type StopCause } from "./signals.ts";

/** A known host divergence in force: failures become XFAIL, passes XPASS. */
export interface XfailMark {
  reason: string;
}

/** The text of an error for a result line: a KvmError's errno and message, else the message. */
export function describeError(e: unknown): string {
  if (e instanceof KvmError) return e.message;
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}

/** True for a promise (or any then-able): an async step, body or expectation. */
export function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === "object" && v !== null && typeof (v as { then?: unknown }).then === "function";
}

/** A rejected promise that does not count as unhandled when the caller forgets to await it. */
function rejected(e: unknown): Promise<never> {
  const p = Promise.reject(e);
  p.catch(() => {});
  return p;
}

/** errnos of open(2) on the KVM device that mean "this host has no usable KVM" (not a kernel bug). */
const NO_KVM_ERRNOS = new Set(["ENOENT", "ENXIO", "ENODEV", "EACCES", "EPERM"]);

/**
 * Why `e` means the host has no usable KVM (open of the KVM device failed: missing, no driver, no
 * permission), or undefined for any other error. Such a scenario skips with this reason.
 */
export function kvmUnavailable(e: unknown): string | undefined {
  if (!(e instanceof KvmError) || e.syscall !== "open" || !NO_KVM_ERRNOS.has(e.errnoName)) return undefined;
  const path = String((e.args as { path?: unknown } | undefined)?.path ?? "");
  if (path !== KVM_DEVICE && path !== kvmDevicePath()) return undefined;
  return `KVM unavailable: ${e.message}`;
}

/** The only KVM API version there has ever been (KVM_GET_API_VERSION). */

/**
 * Why the opened device `k` is not KVM (KVM_GET_API_VERSION fails, e.g. ENOTTY on /dev/null, or
 * answers another version), as a skip reason; undefined when it is KVM.
 */
export function notKvmDevice(k: Kvm): string | undefined {
  let v: number;
  try {
    v = k.apiVersion();
  } catch (e) {
    if (!(e instanceof KvmError)) throw e;
    return `KVM unavailable: ${k.path} is not a KVM device (${e.message})`;
  }
  if (v === KVM_API_VERSION) return undefined;
  return `KVM unavailable: ${k.path} is not a KVM device (KVM_GET_API_VERSION answered ${v}, not ${KVM_API_VERSION})`;
}

/** Hooks that stream a scenario's output as it happens. */
export interface ContextHooks {
  /** A `#` diagnostic, as soon as it is noted. */
  note?(text: string): void;
  /** A result line, as soon as it is recorded (`n` counts from 1). */
  line?(line: ResultLine, n: number): void;
}

/** How a scenario is run: hooks, deadline, interruption. */
export interface ContextOptions {
  hooks?: ContextHooks;
  /** Absolute deadline of the body (`nowMs()` clock); 0 or absent for none. */
  deadline?: number;
  /** The budget the deadline came from, for the reason text. */
  budgetMs?: number;
  /** True once the user pressed Ctrl-C; read synchronously (the runner's flag is set by another thread). */
  interrupted?: () => boolean;
}

/** `60 s`, `1.5 s`, `200 ms`. */
export function formatBudget(ms: number): string {
  return ms >= 1000 ? `${+(ms / 1000).toFixed(3)} s` : `${ms} ms`;
}

/** The running part of a scenario: its body, then its cleanup (and kernel-log verdict), then done. */
type Phase = "body" | "cleanup" | "done";

/** The state of one scenario while it runs. */
export class ScenarioContext {
  readonly lines: ResultLine[] = [];
  readonly #defers: { name: string; fn: () => unknown }[] = [];
  readonly #xfail: XfailMark[] = [];
  /** Kernel log patterns this scenario expects to see (a splat matching one is not a failure). */
  readonly expectedLog: { re: RegExp; name: string }[] = [];
  #pendingDiag: string[] = [];
  #kvm?: Kvm;
  #step?: string;
  #phase: Phase = "body";
  #stopped?: ScenarioStopped;
  /** The body was abandoned (deadline, Ctrl-C) while it waited: it may still wake up. */
  #abandoned = false;
  readonly #opts: ContextOptions;

  constructor(readonly name: string, opts: ContextOptions = {}) {
    this.#opts = opts;
  }

  /**
   * The KVM device ({@link kvmDevicePath}), opened on first use and closed when the scenario ends.
   * A host without usable KVM (missing device, no driver, no permission, a device that is not KVM)
   * skips with the reason.
   */
  get kvm(): Kvm {
    if (!this.#kvm?.open) {
      let k: Kvm;
      try {
        k = Kvm.open(kvmDevicePath());
      } catch (e) {
        const why = kvmUnavailable(e);
        if (why) throw new SkipSignal(why);
        throw e;
      }
      const notKvm = notKvmDevice(k);
      if (notKvm) {
        k.close();
        throw new SkipSignal(notKvm);
      }
      this.#kvm = k;
      this.defer(() => k.close(), "close /dev/kvm");
    }
    return this.#kvm;
  }

  /** A new VM of `type` on {@link kvm}, closed when the scenario ends (with the Kvm). */
  vm(type: string | number = "default"): Vm {
    return this.kvm.createVm(type);
  }

  /** The step running now, if any. */
  get currentStep(): string | undefined {
    return this.#step;
  }

  /** Adds a `#` diagnostic (printed at once; kept with the next result line in the report). */
  note(text: string): void {
    if (this.#phase === "done" || this.#lateFromBody()) return;
    this.#pendingDiag.push(text);
    this.#opts.hooks?.note?.(text);
  }

  /** Why the body must stop now (deadline passed, Ctrl-C), if it must. */
  stopCause(): StopCause | undefined {
    if (this.#phase !== "body") return undefined;
    if (this.#opts.interrupted?.()) return "interrupt";
    const d = this.#opts.deadline ?? 0;
    if (d > 0 && nowMs() >= d) return "deadline";
    return undefined;
  }

  /** The stop that ended the body, if one did. */
  get stopped(): ScenarioStopped | undefined {
    return this.#stopped;
  }

  /** Records `name` as the line the stop ended (a failure for the deadline, interrupted for Ctrl-C). */
  #recordStop(cause: StopCause, name: string, detail?: string): ScenarioStopped {
    const why = cause === "deadline"
      ? `deadline exceeded (scenario budget ${formatBudget(this.#opts.budgetMs ?? 0)})`
      : "interrupted (SIGINT, Ctrl-C)";
    const reason = detail ? `${why}; ${detail}` : why;
    this.#push({ name, status: cause === "deadline" ? "fail" : "interrupted", reason, diag: this.#takeDiag() });
    this.#stopped = new ScenarioStopped(cause, reason);
    return this.#stopped;
  }

  #takeDiag(): string[] {
    const d = this.#pendingDiag;
    this.#pendingDiag = [];
    return d;
  }

  #push(line: ResultLine): void {
    this.lines.push(line);
    this.#opts.hooks?.line?.(line, this.lines.length);
  }

  /**
   * Ends the body from outside (its deadline passed or Ctrl-C came while it waited on something):
   * records the step it was in as stopped. Later records from the abandoned body are not reported.
   */
  abandon(cause: StopCause): void {
    if (this.#phase !== "body") return;
    this.#xfail.length = 0; // the abandoned body's xfail blocks mark nothing after it
    if (!this.#stopped) this.#recordStop(cause, this.#step ?? "scenario body", "the body was still waiting");
    this.#abandoned = true;
    this.#phase = "cleanup";
  }

  /** True for a call from the abandoned body (its own async context) while the cleanup runs. */
  #lateFromBody(): boolean {
    return this.#abandoned && this.#phase === "cleanup" && registry().owner.getStore() === this;
  }

  /** Checks for a stop after the body returned (a run the watchdog stopped, then nothing recorded). */
  endBody(): void {
    if (this.#phase !== "body") return;
    // An xfail block the body was abandoned in (deadline, Ctrl-C) must not mark later lines
    // (cleanup, the kernel-log verdict) as expected failures.
    this.#xfail.length = 0;
    const cause = this.stopCause();
    if (cause && !this.#stopped) this.#recordStop(cause, this.#step ?? "scenario body");
    this.#phase = "cleanup";
  }

  /** Nothing more is reported: lines recorded after this (an abandoned body waking up) are dropped. */
  finish(): void {
    this.#phase = "done";
  }

  /**
   * Records one result. Inside an {@link xfail} block a failure becomes XFAIL (with the reason
   * and the kernel's actual answer) and a pass becomes XPASS. Once the deadline has passed or
   * Ctrl-C came, the line is recorded as stopped instead and {@link ScenarioStopped} is thrown.
   */
  record(name: string, status: Status, reason?: string): ResultLine {
    if (this.#phase === "body") {
      if (this.#stopped) throw this.#stopped;
      const cause = this.stopCause();
      if (cause) throw this.#recordStop(cause, name, status === "pass" ? undefined : reason);
    } else if (this.#phase === "done") {
      throw new ScenarioStopped(this.#stopped?.why ?? "deadline", `scenario '${this.name}' already ended`);
    } else if (this.#lateFromBody()) {
      // The abandoned body woke up during cleanup: its stop was reported; what it does now is not.
      throw new ScenarioStopped(this.#stopped?.why ?? "deadline", `scenario '${this.name}' was stopped`);
    }
    const mark = this.#xfail.at(-1);
    let s = status;
    let r = reason;
    if (mark && status === "fail") {
      s = "xfail";
      r = `${mark.reason}; kernel said: ${reason ?? "(no detail)"}`;
    } else if (mark && status === "pass") {
      s = "xpass";
      r = `${mark.reason}; but it held on this host`;
    }
    const line: ResultLine = { name, status: s, reason: r, diag: this.#takeDiag() };
    this.#push(line);
    return line;
  }

  /** Records a pass. */
  pass(name: string, detail?: string): void {
    this.record(name, "pass", detail);
  }

  /** Records a failure and ends the step (as TEST_ASSERT ends a kselftest). */
  fail(name: string, reason: string): never {
    const line = this.record(name, "fail", reason);
    throw new ExpectationFailed(name, line.reason ?? reason, line.status === "xfail");
  }

  /** Skips the rest of the step (or the scenario, outside a step) with the reason. */
  skip(reason: string): never {
    throw new SkipSignal(reason);
  }

  /** Registers cleanup that runs when the scenario ends, last registered first, whatever happened. */
  defer(fn: () => unknown, name = "cleanup"): void {
    this.#defers.push({ name, fn });
  }

  /**
   * A named step. Its expectations print one line each; a step with none prints one line for
   * itself. An unexpected exception fails the step with the error (errno and message); a skip
   * prints `# SKIP reason`. Sync steps complete synchronously. A step that ends after the
   * deadline (or Ctrl-C) is reported as stopped and its promise rejects with
   * {@link ScenarioStopped}, which ends the scenario body.
   */
  step(name: string, fn: (t: ScenarioContext) => unknown): Promise<void> {
    if (this.#phase === "body" && this.#stopped) return rejected(this.#stopped);
    const before = this.lines.length;
    const outer = this.#step;
    this.#step = name;
    this.note(`step: ${name}`);
    const settle = (threw: boolean, e?: unknown): Promise<void> => {
      this.#step = outer;
      try {
        if (!threw) {
          const cause = this.stopCause();
          if (cause && !this.#stopped) throw this.#recordStop(cause, name);
          if (this.lines.length === before) this.record(name, "pass");
        } else if (e instanceof ScenarioStopped) throw e;
        else if (e instanceof SkipSignal) this.record(name, "skip", e.reason);
        else if (!(e instanceof ExpectationFailed)) this.record(name, "fail", describeError(e));
      } catch (err) {
        return rejected(err);
      }
      return Promise.resolve();
    };
    let r: unknown;
    try {
      r = fn(this);
    } catch (e) {
      return settle(true, e);
    }
    if (isThenable(r)) return Promise.resolve(r).then(() => settle(false), (e) => settle(true, e));
    return settle(false);
  }

  /**
   * Marks a known host divergence: expectations inside `fn` that fail are `# XFAIL reason; kernel
   * said: …` (visible, not failing the run); ones that hold are `# XPASS` (the mark is stale).
   * With `when: false` (e.g. another vendor module) the block runs as plain expectations.
   */
  xfail<T>(reason: string, fn: () => T, opts: { when?: boolean } = {}): T {
    if (opts.when === false) return fn();
    const mark = { reason };
    this.#xfail.push(mark);
    // An expectation that XFAILed here ends this block, not the step: what follows the block is
    // checked as usual (a known divergence must not hide a real failure after it).
    const endsBlock = (e: unknown) => e instanceof ExpectationFailed && e.xfailed;
    const pop = () => {
      if (this.#xfail.at(-1) === mark) this.#xfail.pop();
    };
    let r: T;
    try {
      r = fn();
    } catch (e) {
      pop();
      if (endsBlock(e)) return undefined as T;
      throw e;
    }
    if (isThenable(r)) {
      return Promise.resolve(r).then((v) => v, (e) => {
        if (endsBlock(e)) return undefined;
        throw e;
      }).finally(pop) as T;
    }
    pop();
    return r;
  }

  /** Expects a kernel log record matching `re` during this scenario (checked at its end). */
  expectKernelLog(re: RegExp, name = `kernel log shows ${re.source}`): void {
    this.expectedLog.push({ re, name });
  }

  /** Runs every deferred cleanup (last first); records the failures as result lines. Ends the body. */
  async runCleanup(): Promise<void> {
    this.endBody();
    while (this.#defers.length) {
      const d = this.#defers.pop()!;
      try {
        await d.fn();
      } catch (e) {
        this.#xfail.length = 0;
        this.record(`cleanup: ${d.name}`, "fail", describeError(e));
      }
    }
  }
}
