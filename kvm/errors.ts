/**
 * One error type for every failed syscall: which call, which ioctl, the errno by name and the
 * C library's message, the arguments sent, and a hint where kvmsh knows why the kernel refuses.
 * @module
 */

import { errno, strerror } from "../ffi/libc.ts";
import { errnoName } from "../ffi/errno.ts";
import { hintFor } from "./hints.ts";
import { hex } from "./units.ts";

/** The arguments a failed call was given, for display (bigints print as hex). */
export type CallArgs = Record<string, unknown>;

/** A failed syscall or ioctl, as the kernel answered it. */
export class KvmError extends Error {
  /** The syscall: `ioctl`, `mmap`, `open`, `fallocate`, … */
  readonly syscall: string;
  /** The operation: the ioctl's kernel name for ioctls, else the syscall. */
  readonly op: string;
  /** errno number. */
  readonly errno: number;
  /** errno name, e.g. `EINVAL`. */
  readonly errnoName: string;
  /** The C library's message for the errno. */
  readonly strerror: string;
  /** What was sent. */
  readonly args: CallArgs;
  /** Why the kernel likely said no, when kvmsh knows. */
  readonly hint?: string;

  constructor(init: { syscall: string; op?: string; errno: number; args?: CallArgs; hint?: string }) {
    const op = init.op ?? init.syscall;
    const name = errnoName(init.errno);
    const text = strerror(init.errno);
    const args = init.args ?? {};
    const hint = init.hint ?? hintFor(op, name, args);
    super(`${op}: ${name} (${text})${formatArgs(args)}${hint ? ` — ${hint}` : ""}`);
    this.name = "KvmError";
    this.syscall = init.syscall;
    this.op = op;
    this.errno = init.errno;
    this.errnoName = name;
    this.strerror = text;
    this.args = args;
    this.hint = hint;
  }

  /** A plain object for `--json` output and reports. */
  toJSON(): Record<string, unknown> {
    return {
      error: "KvmError",
      // The line the shell prints, as every other error's JSON has it (scripts read .error.message).
      message: this.message,
      syscall: this.syscall,
      op: this.op,
      errno: this.errno,
      errnoName: this.errnoName,
      strerror: this.strerror,
      args: Object.fromEntries(Object.entries(this.args).map(([k, v]) => [k, jsonValue(v)])),
      ...(this.hint ? { hint: this.hint } : {}),
    };
  }
}

function jsonValue(v: unknown): unknown {
  return typeof v === "bigint" ? hex(v) : v;
}

function formatArgs(args: CallArgs): string {
  const parts = Object.entries(args).map(([k, v]) => `${k}=${typeof v === "bigint" ? hex(v) : v}`);
  return parts.length ? ` [${parts.join(" ")}]` : "";
}

/**
 * Throws a KvmError built from the current errno when `ret` is negative; returns `ret` otherwise.
 * Call it directly on the C result so errno is still the failing call's.
 */
export function check<T extends number | bigint>(
  ret: T,
  syscall: string,
  op?: string,
  args?: CallArgs,
): T {
  if (ret < 0) throw new KvmError({ syscall, op, errno: errno(), args });
  return ret;
}

/** True when `e` is a KvmError with the given errno name. */
export function isErrno(e: unknown, name: string): e is KvmError {
  return e instanceof KvmError && e.errnoName === name;
}

/** An operation on an object that was already closed. */
export class ClosedError extends Error {
  constructor(what: string) {
    super(`${what} is closed`);
    this.name = "ClosedError";
  }
}

/**
 * Refused: closing or unmapping something a live memslot still uses (a guest_memfd bound to the
 * slot, or host memory that is its userspace_addr) — directly, or by deleting or closing what owns
 * that memory (a slot whose own anonymous memory another slot points into, its VM). The slot would
 * go on pointing at memory a later mmap may reuse. Nothing was changed: delete the named slots
 * first (or close their VM, which ends its slots first).
 */
export class InUseError extends Error {
  /** The VM whose slots hold it. */
  readonly vm: string;
  /** The ids of the slots that hold it. */
  readonly slots: number[];
  constructor(what: string, vm: string, slots: readonly number[]) {
    const list = slots.length === 1 ? `slot ${slots[0]}` : `slots ${slots.join(", ")}`;
    super(`${what} backs ${list} of ${vm}; delete the slot${slots.length === 1 ? "" : "s"} first`);
    this.name = "InUseError";
    this.vm = vm;
    this.slots = [...slots];
  }
}

/**
 * runGuest cannot lay out its main memory (GPA 0 up) because a memslot it did not make is in the
 * way (same slot id, or an overlapping GPA range). Delete that slot or run in a new VM.
 */
export class MainMemoryError extends Error {
  /** The VM. */
  readonly vm: string;
  /** The slot in the way. */
  readonly slot: number;
  constructor(message: string, vm: string, slot: number) {
    super(message);
    this.name = "MainMemoryError";
    this.vm = vm;
    this.slot = slot;
  }
}

/**
 * A SIGINT (Ctrl-C) ended the work: e.g. the assembler runGuest started for inline asm died of it
 * (it is in the terminal's foreground process group, so a Ctrl-C reaches it too).
 */
export class InterruptedError extends Error {
  constructor(what: string) {
    super(`interrupted (SIGINT) ${what}`);
    this.name = "InterruptedError";
  }
}
