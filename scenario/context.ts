/**
 * One running scenario: its result lines, steps, cleanup, expected failures (known host
 * divergences), the kernel log patterns it expects, and a lazily opened `/dev/kvm`.
 * Expectations (expect.ts) and requirements (requires.ts) record into it.
 * @module
 */

import { Kvm } from "../kvm/kvm.ts";
import type { Vm } from "../kvm/vm.ts";
import { KvmError } from "../kvm/errors.ts";
import type { ResultLine, Status } from "./result.ts";
import { ExpectationFailed, SkipSignal } from "./signals.ts";

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

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === "object" && v !== null && typeof (v as { then?: unknown }).then === "function";
}

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

  constructor(readonly name: string) {}

  /** `/dev/kvm`, opened on first use and closed when the scenario ends. */
  get kvm(): Kvm {
    if (!this.#kvm?.open) {
      const k = Kvm.open();
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

  /** Adds a `#` diagnostic printed before the next result line. */
  note(text: string): void {
    this.#pendingDiag.push(text);
  }

  /**
   * Records one result. Inside an {@link xfail} block a failure becomes XFAIL (with the reason
   * and the kernel's actual answer) and a pass becomes XPASS.
   */
  record(name: string, status: Status, reason?: string): ResultLine {
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
    const line: ResultLine = { name, status: s, reason: r, diag: this.#pendingDiag };
    this.#pendingDiag = [];
    this.lines.push(line);
    return line;
  }

  /** Records a pass. */
  pass(name: string, detail?: string): void {
    this.record(name, "pass", detail);
  }

  /** Records a failure and ends the step (as TEST_ASSERT ends a kselftest). */
  fail(name: string, reason: string): never {
    const line = this.record(name, "fail", reason);
    throw new ExpectationFailed(name, line.reason ?? reason);
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
   * prints `# SKIP reason`. Sync steps complete synchronously.
   */
  step(name: string, fn: (t: ScenarioContext) => unknown): Promise<void> {
    const before = this.lines.length;
    const outer = this.#step;
    this.#step = name;
    this.note(`step: ${name}`);
    const done = () => {
      this.#step = outer;
      if (this.lines.length === before) this.record(name, "pass");
    };
    const failed = (e: unknown) => {
      this.#step = outer;
      if (e instanceof ExpectationFailed) return;
      if (e instanceof SkipSignal) this.record(name, "skip", e.reason);
      else this.record(name, "fail", describeError(e));
    };
    try {
      const r = fn(this);
      if (isThenable(r)) return Promise.resolve(r).then(done, failed);
      done();
    } catch (e) {
      failed(e);
    }
    return Promise.resolve();
  }

  /**
   * Marks a known host divergence: expectations inside `fn` that fail are `# XFAIL reason; kernel
   * said: …` (visible, not failing the run); ones that hold are `# XPASS` (the mark is stale).
   * With `when: false` (e.g. another vendor module) the block runs as plain expectations.
   */
  xfail<T>(reason: string, fn: () => T, opts: { when?: boolean } = {}): T {
    if (opts.when === false) return fn();
    this.#xfail.push({ reason });
    let r: T;
    try {
      r = fn();
    } catch (e) {
      this.#xfail.pop();
      throw e;
    }
    if (isThenable(r)) {
      return Promise.resolve(r).finally(() => this.#xfail.pop()) as T;
    }
    this.#xfail.pop();
    return r;
  }

  /** Expects a kernel log record matching `re` during this scenario (checked at its end). */
  expectKernelLog(re: RegExp, name = `kernel log shows ${re.source}`): void {
    this.expectedLog.push({ re, name });
  }

  /** Runs every deferred cleanup (last first); returns the failures as result lines. */
  async runCleanup(): Promise<void> {
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
