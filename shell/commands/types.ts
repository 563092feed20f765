/**
 * The shape of a command: its table entry (one source of truth for parsing, help and
 * completion) and its implementation (running and recording), loaded on first use.
 * @module
 */

import type { Session } from "../session.ts";
import type { CommandFailed } from "../failure.ts";

/** Completes a value from the prefix typed so far. */
export type Completer = (ctx: Session, prefix: string) => string[];

/** A `--flag` (boolean when it has no `value`). */
export interface FlagSpec {
  name: string;
  /** Metavariable of the value (`S`, `FLAGS`); absent for a boolean flag. */
  value?: string;
  help: string;
  required?: boolean;
  /** May be given more than once; the values arrive joined by commas (`--arg 1 --arg 2` is `1,2`). */
  repeat?: boolean;
  complete?: Completer;
}

/** A positional argument. */
export interface ArgSpec {
  name: string;
  optional?: boolean;
  /** Takes every remaining word. */
  rest?: boolean;
  complete?: Completer;
}

/** What the parser hands a command. */
export interface Args {
  /** The command's full name (`gmem create`). */
  command: string;
  /** Positionals, after the command's words. */
  pos: string[];
  /** Flags given: value, or true for boolean flags. */
  flags: Record<string, string | true>;
  /** `--json` for this command (or globally). */
  json: boolean;
  /** Suffix of a `x/<fmt>` style command name. */
  suffix?: string;
  /** The words as typed (for recording the command line). */
  words: string[];
}

/** What a command produced: text lines for people, data for `--json`. */
export interface Outcome {
  lines?: string[];
  data?: Record<string, unknown>;
  /** Name of the object it made (binds the recorded call's result: `const gmem0 = …`). */
  bind?: string;
  /**
   * Names the command made on the side, bound after its statements in a recording (a run's own
   * guest_memfd: `const gmem0 = kvmsh.ownMemory(vm0).gmems[0];`), so later commands can use them.
   */
  sideBinds?: { name: string; expr: string }[];
  /** Values the recorder turns into replay checks (see {@link Recorded.check}). */
  observed?: unknown;
  /** Lines for stderr that are not an error (a warning before sending). */
  warnings?: string[];
  /**
   * The command ran (its lines and data are shown) but failed as a whole: a guest stopped by its
   * timeout. Printed as an error after the lines; the command counts as failed.
   */
  fail?: CommandFailed;
  /** A guest run's share of kvmsh's exit status: its exit code (port 0xF4) & 0xff, or 0 without one. */
  runStatus?: number;
}

/** The TypeScript a command records: one API call. */
export interface Recorded {
  /** The call expression, e.g. `vm0.createGuestMemfd(0x200000n, "mmap")`. Built only from escaped parts. */
  expr: string;
  /** The call returns a promise. */
  async?: boolean;
  /** After success, statements that check the result against what the live session saw. */
  check?: (result: string, out: Outcome, claim: string) => string[];
}

/** What a command does: its run (and recorded call), in a module loaded on first use. */
export interface CommandImpl {
  /** Runs it. Throws UsageError for bad input before anything is sent. */
  run(ctx: Session, a: Args): Outcome | Promise<Outcome>;
  /** The equivalent API call(s), computed before running (may throw UsageError). */
  record?(a: Args, ctx: Session): Recorded[];
}

/** A group's command implementations, by the command's full name. */
export type CommandImpls = Record<string, CommandImpl>;

/**
 * A command of the table: what help, completion and the parser need (shell/specs/). What it does
 * is in its group's module under commands/, which `load` imports on first use (table.ts implOf).
 */
export interface Command {
  /** Full name: `gmem create`, `x`. */
  name: string;
  /** One line for `help`. */
  summary: string;
  /** Usage line. */
  usage: string;
  /** One example. */
  example: string;
  args?: ArgSpec[];
  flags?: FlagSpec[];
  /** Not listed in help (debugging aids). */
  hidden?: boolean;
  /** Imports the group's implementations (commands/<group>.ts). */
  load(): Promise<CommandImpls>;
}
