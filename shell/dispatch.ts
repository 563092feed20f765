/**
 * Runs command lines: parse, record the equivalent call, run, print. A failure prints one line
 * (or one JSON object) and the shell goes on; objects stay usable.
 * @module
 */

import { KvmError } from "../core.ts";
import { parseCommand } from "./parse.ts";
import { implOf, lookup, subCommands } from "./table.ts";
import { splitCommands } from "./lexer.ts";
import { err, errorJson, errorLine, jsonLine, out, paint } from "./output.ts";
import { statements } from "./journal.ts";
import type { Session } from "./session.ts";
import type { Args, Command, CommandImpl, Outcome, Recorded } from "./commands/types.ts";
import { UsageError } from "./usage_error.ts";
import { failureStatus } from "./failure.ts";

/** How a line is run. */
export interface RunOptions {
  /** Go on after a failure (within the line). */
  keepGoing?: boolean;
  /** With --json, print the result object alone (one-shot `kvmsh caps --json`: the host report), one line. */
  jsonBare?: boolean;
}

/** Notes a failure: the last error, and the exit status it gives. */
function failed(ctx: Session, e: unknown): void {
  ctx.lastError = e;
  ctx.failStatus = failureStatus(e);
}

function printError(ctx: Session, name: string, e: unknown, json: boolean): void {
  failed(ctx, e);
  if (json) out(jsonLine({ command: name, ok: false, error: errorJson(e) }));
  else err(paint("red", `error: ${errorLine(e)}`, "stderr"));
}

/**
 * The most bytes a read's check keeps in the journal. The journal is the session before a later
 * `record start`, written so the objects it made exist: its calls matter (a read through a
 * guest_memfd mapping allocates pages), the hex of every large read would only take memory
 * (a thousand 64 KiB reads held ~460 MB). A recording checks every read's bytes.
 */
export const JOURNAL_CHECK_MAX = 4096;

function journal(ctx: Session, a: Args, recs: Recorded[], result: { out?: Outcome; error?: unknown }): void {
  if (a.command.startsWith("record ")) return;
  const recording = ctx.recorder?.active === true;
  const seen = result.out?.observed;
  const large = seen instanceof Uint8Array && seen.length > JOURNAL_CHECK_MAX && recs.some((r) => r.check);
  // The checked statements (the hex of every byte) only when something keeps them.
  const lines = recording || !large ? statements(a.words, recs, result) : undefined;
  if (recording) ctx.recorder!.append(lines!);
  if (large) {
    const unchecked = statements(a.words, recs.map((r) => ({ ...r, check: undefined })), result);
    ctx.journal.push(...unchecked, `  // (its ${seen.length} bytes were not kept: a recording checks them)`);
  } else ctx.journal.push(...lines!);
}

/**
 * The command's name as `--json` reports it, also when its words do not parse: the table's name
 * (`vm create`) when the command is known, else the words that would name it (`gmem frob`, `frob`).
 */
function commandName(words: string[]): string {
  try {
    return jsonName(lookup(words).cmd, words);
  } catch {
    const sub = words[1] !== undefined && !words[1].startsWith("-") && subCommands(words[0]).length > 0;
    return sub ? `${words[0]} ${words[1]}` : words[0] ?? "";
  }
}

/** The name `--json` gives a command: the table's, or the word as typed for `x/<n><unit><fmt>` (`x/4xb`). */
function jsonName(cmd: Command, words: string[]): string {
  return words[0]?.startsWith(`${cmd.name}/`) ? words[0] : cmd.name;
}

/** Runs one command (its words). Returns true on success. */
export async function runCommand(ctx: Session, words: string[], opts: RunOptions = {}): Promise<boolean> {
  let cmd: Command;
  let impl: CommandImpl;
  let a: Args;
  let recs: Recorded[];
  const json = ctx.json || words.includes("--json");
  try {
    ({ cmd, args: a } = parseCommand(words, ctx.json));
    impl = await implOf(cmd);
    recs = impl.record?.(a, ctx) ?? [];
  } catch (e) {
    printError(ctx, commandName(words), e, json);
    if (!(e instanceof UsageError) && !(e instanceof KvmError) && !(e instanceof Error)) throw e;
    return false;
  }
  ctx.pendingWarnings.length = 0;
  let o: Outcome;
  try {
    o = await impl.run(ctx, a);
  } catch (e) {
    failed(ctx, e);
    for (const w of ctx.pendingWarnings) if (!a.json) err(paint("yellow", w, "stderr"));
    if (!(e instanceof UsageError)) journal(ctx, a, recs, { error: e });
    if (a.json) {
      out(
        jsonLine({
          command: jsonName(cmd, words),
          ok: false,
          ...(ctx.pendingWarnings.length ? { warnings: [...ctx.pendingWarnings] } : {}),
          error: errorJson(e),
        }),
      );
    } else err(paint("red", `error: ${errorLine(e)}`, "stderr"));
    return false;
  }
  journal(ctx, a, recs, { out: o });
  const warnings = [...ctx.pendingWarnings, ...(o.warnings ?? [])];
  if (o.fail) failed(ctx, o.fail);
  else {
    ctx.lastError = undefined;
    if (o.runStatus !== undefined) ctx.runStatus = o.runStatus;
  }
  if (a.json) {
    const obj = {
      command: jsonName(cmd, words),
      ok: !o.fail,
      ...(warnings.length ? { warnings } : {}),
      result: o.data ?? {},
      ...(o.fail ? { error: errorJson(o.fail) } : {}),
    };
    out(opts.jsonBare && !o.fail ? jsonLine(obj.result) : jsonLine(obj));
  } else {
    for (const w of warnings) err(paint("yellow", w, "stderr"));
    if (o.lines?.length) out(o.lines.join("\n"));
    if (o.fail) err(paint("red", `error: ${errorLine(o.fail)}`, "stderr"));
  }
  return !o.fail;
}

/** Runs a line of `;`-separated commands. Returns true when all succeeded. */
export async function runLine(ctx: Session, line: string, opts: RunOptions = {}): Promise<boolean> {
  // History outside a terminal: every line given (the prompt keeps its own); not a sourced file's lines.
  if (!ctx.interactive && ctx.depth === 0 && line.trim()) ctx.history.push(line.trim());
  let cmds: string[][];
  try {
    cmds = splitCommands(line);
  } catch (e) {
    printError(ctx, "", e, ctx.json);
    return false;
  }
  let ok = true;
  for (const words of cmds) {
    // After a Ctrl-C the rest of the line is abandoned (outside the prompt exitCode ends it too).
    if (ctx.exitCode !== undefined || ctx.interrupted) break;
    const r = await runCommand(ctx, words, opts);
    ok &&= r;
    if (!r && !opts.keepGoing) return false;
  }
  return ok;
}
