/**
 * A command that ran but failed as a whole — a guest run stopped by its timeout, an assertion or
 * an exit kvmsh does not resume from; a `source` that stopped at a failing line — and the exit
 * status each kind of failure gives outside the prompt.
 * @module
 */

import { UsageError } from "./usage_error.ts";

/** A failure that is not a kernel error or bad input; `status` is the exit status it gives. */
export class CommandFailed extends Error {
  constructor(message: string, readonly status = 1, name = "CommandFailed") {
    super(message);
    this.name = name;
  }

  /** JSON form for `--json`. */
  toJSON(): Record<string, unknown> {
    return { error: this.name, message: this.message };
  }
}

/** The exit status a failure gives: 2 for a usage error, a CommandFailed's own, else 1. */
export function failureStatus(e: unknown): number {
  if (e instanceof UsageError) return 2;
  if (e instanceof CommandFailed) return e.status;
  return 1;
}

/**
 * The reason in an OS error's words, as a person reads it: `is a directory`, `no such file or
 * directory` (Deno says "Is a directory (os error 21): readfile '/tmp'"); other errors' message.
 */
export function osReason(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  const i = m.indexOf(" (os error ");
  const reason = i >= 0 ? m.slice(0, i) : m;
  return reason.charAt(0).toLowerCase() + reason.slice(1);
}
