/**
 * Expectations that read like the claim they test. Each prints one KTAP line (named by the
 * claim, or by the call's own source text) and, when it fails, ends the step as kselftest's
 * TEST_ASSERT ends a test. Those that take a function accept sync and async ones.
 * @module
 */

import { KvmError } from "../kvm/errors.ts";
import { MemoryFaultError } from "../kvm/mapping.ts";
import type { GuestMemfd } from "../kvm/guest_memfd.ts";
import type { Vm } from "../kvm/vm.ts";
import { errnoName, EXIT, parseErrno } from "../kvm/abi.ts";
import { hex } from "../kvm/units.ts";
import { type ExitInfo, formatExit } from "../kvm/exit_decode.ts";
import { currentContext } from "./registry.ts";
import { ExpectationFailed } from "./signals.ts";
import { describeError, isThenable } from "./context.ts";

/**
 * Deep strict equality as node:util's isDeepStrictEqual for the values scenarios compare
 * (primitives by Object.is, arrays, typed arrays, plain objects, Map, Set, Date), written out:
 * importing node:util costs ~10 ms of every kvmsh start.
 */
function isDeepStrictEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  if (a instanceof Date) return Object.is(a.getTime(), (b as Date).getTime());
  if (ArrayBuffer.isView(a)) {
    const x = a as unknown as ArrayLike<unknown>, y = b as unknown as ArrayLike<unknown>;
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) return false;
    return true;
  }
  if (a instanceof Map) {
    const m = b as Map<unknown, unknown>;
    if (a.size !== m.size) return false;
    for (const [k, v] of a) if (!m.has(k) || !isDeepStrictEqual(v, m.get(k))) return false;
    return true;
  }
  if (a instanceof Set) {
    const t = b as Set<unknown>;
    if (a.size !== t.size) return false;
    for (const v of a) {
      if (!t.has(v) && ![...t].some((w) => isDeepStrictEqual(v, w))) return false;
    }
    return true;
  }
  const ka = Object.keys(a), kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  const ob = b as Record<string, unknown>;
  for (const k of ka) {
    if (!Object.hasOwn(ob, k) || !isDeepStrictEqual((a as Record<string, unknown>)[k], ob[k])) return false;
  }
  return true;
}

/** The body of `() => expr` as a claim: `vm.createGuestMemfd(1n)`. */
export function describeFn(fn: (...a: never[]) => unknown): string {
  let s = fn.toString().replace(/\s+/g, " ").trim();
  s = s.replace(/^(async\s*)?(\(\s*\)|\w+)\s*=>\s*/, "");
  if (s.startsWith("{") && s.endsWith("}")) s = s.slice(1, -1).trim().replace(/^return\s+/, "").replace(/;$/, "");
  return s.length > 80 ? `${s.slice(0, 77)}...` : s || "(anonymous)";
}

/**
 * Runs `fn` and hands its outcome (value or thrown error) to `judge`, which returns undefined on
 * success or the failure reason. Sync in, sync out; async in, promise out.
 */
function judged<T>(
  claim: string,
  fn: () => T,
  judge: (r: { ok: true; value: Awaited<T> } | { ok: false; error: unknown }) => string | undefined,
  passDetail?: (value: Awaited<T> | undefined) => string | undefined,
): T {
  const t = currentContext();
  const finish = (r: { ok: true; value: Awaited<T> } | { ok: false; error: unknown }) => {
    const why = judge(r);
    if (why !== undefined) t.fail(claim, why);
    t.pass(claim, passDetail?.(r.ok ? r.value : undefined));
    return r.ok ? r.value : undefined;
  };
  let v: T;
  try {
    v = fn();
  } catch (error) {
    return finish({ ok: false, error }) as T;
  }
  if (isThenable(v)) {
    return Promise.resolve(v).then(
      (value) => finish({ ok: true, value: value as Awaited<T> }),
      (error) => finish({ ok: false, error }),
    ) as T;
  }
  return finish({ ok: true, value: v as Awaited<T> }) as T;
}

/** Expects `fn` to succeed; returns its value (a promise for an async `fn`). */
export function expectOk<T>(fn: () => Promise<T>, name?: string): Promise<T>;
export function expectOk<T>(fn: () => T, name?: string): T;
export function expectOk<T>(fn: () => T, name?: string): T {
  const claim = name ?? describeFn(fn);
  return judged(claim, fn, (r) => r.ok ? undefined : `expected success, got ${describeError(r.error)}`);
}

/** The errno name an expectation compares with KvmError.errnoName (`E#200` for an unnamed 200). */
function errnoLabel(e: string | number): string {
  const n = typeof e === "number" ? e : parseErrno(e);
  if (n === undefined) throw new RangeError(`unknown errno '${e}'`);
  return errnoName(n);
}

function closeIfPossible(v: unknown): void {
  try {
    (v as { close?: () => void } | undefined)?.close?.();
  } catch {
    // the unexpected object may already be closed
  }
}

/** Expects `fn` to fail with errno `errno` (`"EINVAL"`, `22`): the kernel's answer, by name. */
export function expectErrno<T>(errno: string | number, fn: () => Promise<T>, name?: string): Promise<void>;
export function expectErrno<T>(errno: string | number, fn: () => T, name?: string): void;
export function expectErrno<T>(errno: string | number, fn: () => T, name?: string): void | Promise<void> {
  const want = errnoLabel(errno);
  const claim = name ?? `${describeFn(fn)} fails with ${want}`;
  const r = judged(claim, fn, (r) => {
    if (r.ok) {
      closeIfPossible(r.value);
      return `succeeded (expected ${want})`;
    }
    if (r.error instanceof KvmError) {
      return r.error.errnoName === want ? undefined : `expected ${want}, got ${r.error.message}`;
    }
    return `expected ${want}, got ${describeError(r.error)}`;
  });
  return isThenable(r) ? Promise.resolve(r).then(() => {}) : undefined;
}

/** Expects `fn` to fail with any errno (upstream's `ret < 0` checks); the errno is printed. */
export function expectError<T>(fn: () => T, name?: string): void {
  const claim = name ?? `${describeFn(fn)} fails`;
  let got = "";
  judged(claim, fn, (r) => {
    if (r.ok) {
      closeIfPossible(r.value);
      return "expected the kernel to refuse, but it succeeded";
    }
    if (r.error instanceof KvmError) {
      got = r.error.errnoName;
      return undefined;
    }
    return `expected an errno, got ${describeError(r.error)}`;
  }, () => got);
}

/**
 * Expects the fault-safe path to report a fault: `fn` throws MemoryFaultError with EFAULT (where a
 * plain load or store would have raised SIGBUS).
 */
export function expectFault<T>(fn: () => T, name?: string): void {
  const claim = name ?? `${describeFn(fn)} faults (EFAULT)`;
  let at = "";
  judged(claim, fn, (r) => {
    if (r.ok) return "expected a fault (EFAULT), but the access worked";
    if (r.error instanceof MemoryFaultError && r.error.errnoName === "EFAULT") {
      at = `fault at ${hex(r.error.faultOffset)}`;
      return undefined;
    }
    return `expected EFAULT from the fault-safe path, got ${describeError(r.error)}`;
  }, () => at);
}

/**
 * Expects a real load (`read`) or store (`write`) of gmem offset `offset` in a child process to
 * die of SIGBUS, as the kernel selftests' TEST_EXPECT_SIGBUS. The child maps the page around
 * `offset`, or `map.mapOffset`/`map.mapLength` of the file (a mapping larger than the file: past EOF).
 */
export async function expectSigbus(
  gmem: GuestMemfd,
  offset: bigint,
  mode: "read" | "write" = "read",
  name?: string,
  map: { mapOffset?: bigint; mapLength?: bigint } = {},
): Promise<void> {
  const t = currentContext();
  const claim = name ?? `${mode} of ${gmem.name} at ${hex(offset)} in a child gets SIGBUS`;
  const r = await gmem.touchInChild(offset, mode, 0xaa, map);
  if (r.signal === "SIGBUS") return t.pass(claim);
  t.fail(
    claim,
    r.signal
      ? `child died of ${r.signal}`
      : `child exited ${r.code}${r.value !== undefined ? ` after reading ${hex(r.value)}` : ""}${
        r.stderr ? `: ${r.stderr}` : ""
      }`,
  );
}

/**
 * Expects a real load or store of gmem offset `offset` in a child process to work (no signal);
 * with `value`, a read must return that byte.
 */
export async function expectAccess(
  gmem: GuestMemfd,
  offset: bigint,
  mode: "read" | "write" = "read",
  value?: number,
  name?: string,
): Promise<void> {
  const t = currentContext();
  const claim = name ??
    `${mode} of ${gmem.name} at ${hex(offset)} in a child works${value !== undefined ? ` (${hex(value)})` : ""}`;
  const r = await gmem.touchInChild(offset, mode, value ?? 0);
  if (r.signal) return t.fail(claim, `child died of ${r.signal}`);
  if (r.code !== 0) return t.fail(claim, `child exited ${r.code}: ${r.stderr}`);
  if (mode === "read" && value !== undefined && r.value !== value) {
    return t.fail(claim, `read ${hex(r.value ?? -1)}, expected ${hex(value)}`);
  }
  t.pass(claim);
}

/** The first difference of `got` from `want` (a byte pattern or a single byte everywhere). */
export function bytesDiffer(got: Uint8Array, want: Uint8Array | readonly number[] | number): string | undefined {
  const len = typeof want === "number" ? got.length : want.length;
  if (got.length !== len) return `got ${got.length} bytes, expected ${len}`;
  let first = -1;
  let count = 0;
  for (let i = 0; i < len; i++) {
    const w = typeof want === "number" ? want : want[i];
    if (got[i] !== w) {
      if (first < 0) first = i;
      count++;
    }
  }
  if (first < 0) return undefined;
  const w = typeof want === "number" ? want : want[first];
  return `byte ${hex(first)} is ${hex(got[first])}, expected ${hex(w)} (${count} of ${len} differ)`;
}

/**
 * Expects bytes: `actual` (or what `actual()` returns, read fault-safe) equals `want`, a byte
 * array or one value every byte must have.
 */
export function expectBytes(
  actual: Uint8Array | (() => Uint8Array),
  want: Uint8Array | readonly number[] | number,
  name?: string,
): void {
  const fn = typeof actual === "function" ? actual : () => actual;
  const claim = name ??
    `${typeof actual === "function" ? describeFn(actual) : "bytes"} ${
      typeof want === "number" ? `all ${hex(want)}` : `equal ${want.length} expected bytes`
    }`;
  judged(claim, fn, (r) => (r.ok ? bytesDiffer(r.value, want) : `reading failed: ${describeError(r.error)}`));
}

/** Expects guest memory at `gpa` (read through the fault-safe path) to hold `want`. */
export function expectGuestBytes(
  vm: Vm,
  gpa: bigint,
  want: Uint8Array | readonly number[] | number,
  length?: number,
  name?: string,
): void {
  const len = length ?? (typeof want === "number" ? 1 : want.length);
  expectBytes(
    () => vm.readGuest(gpa, len),
    want,
    name ??
      `guest memory at GPA ${hex(gpa)} (+${hex(len)}) ${typeof want === "number" ? `all ${hex(want)}` : "matches"}`,
  );
}

function show(v: unknown): string {
  return Deno.inspect(v, { compact: true, breakLength: Infinity, depth: 4 });
}

/** Expects `actual` to deep-equal `want`. */
export function expectEqual<T>(actual: T, want: T, name: string): void {
  const t = currentContext();
  if (isDeepStrictEqual(actual, want)) return t.pass(name);
  t.fail(name, `got ${show(actual)}, expected ${show(want)}`);
}

/** Expects a condition; `detail` (e.g. the values seen) is printed when it does not hold. */
export function expectTrue(cond: boolean, name: string, detail?: string): void {
  const t = currentContext();
  if (cond) return t.pass(name);
  t.fail(name, detail ?? "does not hold");
}

/**
 * What an exit must look like: a reason name (`"HLT"`), or the reason with fields: an IO port
 * (and `value` written, `direction`), a MEMORY_FAULT's `private` flag, `gpa`, `size`, an MMIO `addr`
 * (and `write`, and `value`: the value written, or its bytes as an array).
 */
export type ExitExpectation =
  | string
  | {
    reason: string;
    port?: number;
    value?: number | readonly number[];
    direction?: "in" | "out";
    private?: boolean;
    gpa?: bigint;
    size?: bigint;
    addr?: bigint;
    write?: boolean;
  };

function exitOf(v: unknown): ExitInfo | undefined {
  if (typeof v !== "object" || v === null) return undefined;
  if ("exit" in v && typeof (v as { exit?: ExitInfo }).exit?.name === "string") return (v as { exit: ExitInfo }).exit;
  if ("name" in v && "reason" in v) return v as ExitInfo;
  return undefined;
}

/** Why `x` does not match `want`, or undefined when it does. */
/** Throws RangeError for an exit reason the table does not name (a typo would never match). */
function checkExitReason(want: ExitExpectation): void {
  const reason = (typeof want === "string" ? want : want.reason).toUpperCase();
  if (!Object.hasOwn(EXIT, reason)) {
    throw new RangeError(`unknown exit reason '${reason}' (known: ${Object.keys(EXIT).join(", ")})`);
  }
}

export function exitMismatch(x: ExitInfo, want: ExitExpectation): string | undefined {
  const w = typeof want === "string" ? { reason: want } : want;
  const wrong: string[] = [];
  if (x.name !== w.reason.toUpperCase()) wrong.push(`reason ${x.name}`);
  else {
    if (w.port !== undefined && x.io?.port !== w.port) wrong.push(`port ${hex(x.io?.port ?? -1)}`);
    if (w.direction !== undefined && x.io?.direction !== w.direction) wrong.push(`direction ${x.io?.direction}`);
    if (w.value !== undefined && x.mmio) {
      // An MMIO access: a number is the value (little-endian, its len bytes); an array, its bytes.
      const m = x.mmio;
      const same = typeof w.value === "number"
        ? m.value === BigInt(w.value)
        : isDeepStrictEqual(m.data.slice(0, m.len), [...w.value]);
      if (!same) wrong.push(`data ${hex(m.value)}`);
    } else if (w.value !== undefined) {
      const vals = typeof w.value === "number" ? [w.value] : [...w.value];
      if (!isDeepStrictEqual(x.io?.data ?? [], vals)) {
        wrong.push(`data ${(x.io?.data ?? []).map((d) => hex(d)).join(",")}`);
      }
    }
    if (w.private !== undefined && x.memoryFault?.private !== w.private) {
      wrong.push(`flags ${x.memoryFault?.flagNames ?? "none"}`);
    }
    if (w.gpa !== undefined && x.memoryFault?.gpa !== w.gpa) wrong.push(`gpa ${hex(x.memoryFault?.gpa ?? -1n)}`);
    if (w.size !== undefined && x.memoryFault?.size !== w.size) wrong.push(`size ${hex(x.memoryFault?.size ?? -1n)}`);
    if (w.addr !== undefined && x.mmio?.addr !== w.addr) wrong.push(`addr ${hex(x.mmio?.addr ?? -1n)}`);
    if (w.write !== undefined && x.mmio?.isWrite !== w.write) wrong.push(w.write ? "a read" : "a write");
  }
  return wrong.length ? `got ${formatExit(x)}` : undefined;
}

function describeExpectation(want: ExitExpectation): string {
  if (typeof want === "string") return want;
  const parts = [want.reason];
  if (want.direction) parts.push(want.direction);
  if (want.port !== undefined) parts.push(`port=${hex(want.port)}`);
  if (want.value !== undefined) {
    parts.push(`data=${(typeof want.value === "number" ? [want.value] : want.value).map((v) => hex(v)).join(",")}`);
  }
  if (want.private !== undefined) parts.push(want.private ? "private" : "shared");
  if (want.gpa !== undefined) parts.push(`gpa=${hex(want.gpa)}`);
  if (want.size !== undefined) parts.push(`size=${hex(want.size)}`);
  if (want.addr !== undefined) parts.push(`addr=${hex(want.addr)}`);
  return parts.join(" ");
}

/**
 * Expects a guest exit: `fn` runs the guest (`() => runGuest(vm, {...})`, `() => vcpu.run()`…)
 * and returns the exit or a run result holding one (`.exit`). A mismatch prints the exit the
 * kernel actually gave. Returns what `fn` returned.
 */
export function expectExit<T>(want: ExitExpectation, fn: () => T, name?: string): T {
  checkExitReason(want);
  const claim = name ?? `guest exits with ${describeExpectation(want)}`;
  return judged(claim, fn, (r) => {
    if (!r.ok) return `the run failed: ${describeError(r.error)}`;
    const x = exitOf(r.value);
    if (!x) return `no exit in ${Deno.inspect(r.value, { depth: 1 })}`;
    return exitMismatch(x, want);
  });
}

/** One ucall a guest must make: its command, and optionally its first args and its message. */
export interface UcallExpectation {
  cmd: string;
  /** The first arguments (a prefix of the four the ucall carries). */
  args?: readonly (bigint | number)[];
  message?: string;
}

/**
 * What a whole guest run must show (every field optional): why it stopped (`stop`), its last exit
 * (`exit`, as {@link expectExit}), the console text (`console`, exact or a RegExp), the
 * isa-debug-exit code (`exitCode`: the value written, `{value, status}`, or `null` for none), and the
 * ucalls in order (`ucalls`).
 */
export interface GuestResultExpectation {
  stop?: string;
  exit?: ExitExpectation;
  console?: string | RegExp;
  exitCode?: number | { value: number; status?: number } | null;
  ucalls?: readonly UcallExpectation[];
}

/** The parts of a run result {@link expectGuestResult} reads (RunResult / GuestResult have them). */
export interface GuestRunOutcome {
  stop: string;
  exit: ExitInfo;
  console: string;
  exitCode?: { value: number; status: number };
  ucalls: readonly { cmd: string; args: readonly bigint[]; message: string }[];
}

function ucallText(u: { cmd: string; args?: readonly (bigint | number)[]; message?: string }): string {
  const args = u.args?.length ? `(${u.args.map((a) => hex(BigInt(a))).join(", ")})` : "";
  return `${u.cmd}${args}${u.message ? ` ${JSON.stringify(u.message)}` : ""}`;
}

function ucallsMismatch(got: GuestRunOutcome["ucalls"], want: readonly UcallExpectation[]): string | undefined {
  const shown = () => `got [${got.map((u) => ucallText({ ...u, args: u.args })).join(", ") || "none"}]`;
  if (got.length !== want.length) return `${got.length} ucall(s), expected ${want.length}: ${shown()}`;
  for (const [i, w] of want.entries()) {
    const g = got[i];
    const argsDiffer = w.args !== undefined && w.args.some((a, j) => BigInt(a) !== g.args[j]);
    if (g.cmd !== w.cmd || argsDiffer || (w.message !== undefined && g.message !== w.message)) {
      return `ucall ${i + 1} is ${ucallText(g)}, expected ${ucallText(w)}: ${shown()}`;
    }
  }
  return undefined;
}

function exitCodeMismatch(
  got: GuestRunOutcome["exitCode"],
  want: GuestResultExpectation["exitCode"],
): string | undefined {
  if (want === null) return got ? `got exit code ${hex(got.value)} (status ${got.status}), expected none` : undefined;
  if (want === undefined) return undefined;
  const w = typeof want === "number" ? { value: want } : want;
  if (!got) return `no exit code (the guest never wrote port 0xf4), expected ${hex(w.value)}`;
  if (got.value !== w.value || (w.status !== undefined && got.status !== w.status)) {
    return `got ${hex(got.value)} (status ${got.status}), expected ${hex(w.value)}${
      w.status !== undefined ? ` (status ${w.status})` : ""
    }`;
  }
  return undefined;
}

/**
 * Expects a guest run's whole outcome: one KTAP line per field of `want` (stop, last exit, console,
 * exit code, ucalls), each with what the run actually did when it differs; then, if any differed,
 * ends the step. `result` is a run result or a function that runs the guest
 * (`() => runGuest(vm, {...})`). Returns the result.
 *
 * ```ts
 * expectGuestResult(() => runGuest(vm, { elf: guestPath("ucall_demo") }), {
 *   stop: "done", exit: "IO", console: "hello from a ucall\n",
 *   ucalls: [{ cmd: "print" }, { cmd: "sync", args: [1] }, { cmd: "sync", args: [2] }, { cmd: "done" }],
 * });
 * ```
 */
export function expectGuestResult<R extends GuestRunOutcome>(
  result: R | (() => R),
  want: GuestResultExpectation,
  name = "guest run",
): R {
  if (want.exit !== undefined) checkExitReason(want.exit);
  const t = currentContext();
  let r: R;
  try {
    r = typeof result === "function" ? result() : result;
  } catch (e) {
    return t.fail(name, `the run failed: ${describeError(e)}`);
  }
  const checks: [string, string | undefined][] = [];
  if (want.stop !== undefined) {
    checks.push([`stop is ${want.stop}`, r.stop === want.stop ? undefined : `got ${r.stop}`]);
  }
  if (want.exit !== undefined) {
    checks.push([`last exit is ${describeExpectation(want.exit)}`, exitMismatch(r.exit, want.exit)]);
  }
  if (want.console !== undefined) {
    const c = want.console;
    const ok = typeof c === "string" ? r.console === c : c.test(r.console);
    checks.push([
      typeof c === "string" ? `console is ${JSON.stringify(c)}` : `console matches ${c}`,
      ok ? undefined : `got ${JSON.stringify(r.console)}`,
    ]);
  }
  if (want.exitCode !== undefined) {
    const w = want.exitCode;
    const label = w === null ? "none" : hex(typeof w === "number" ? w : w.value);
    checks.push([`exit code is ${label}`, exitCodeMismatch(r.exitCode, w)]);
  }
  if (want.ucalls !== undefined) {
    checks.push([
      `ucalls are ${want.ucalls.map(ucallText).join(", ") || "none"}`,
      ucallsMismatch(r.ucalls, want.ucalls),
    ]);
  }
  let failed: ExpectationFailed | undefined;
  for (const [claim, why] of checks) {
    const line = t.record(`${name}: ${claim}`, why === undefined ? "pass" : "fail", why);
    if (why !== undefined) failed ??= new ExpectationFailed(line.name, line.reason ?? why, line.status === "xfail");
  }
  if (failed) throw failed; // ends the step, as t.fail does (inside an xfail block: the block)
  return r;
}
