/**
 * The interactive prompt: node:readline line editing, persistent history, tab completion,
 * Ctrl-C abandons the line (or stops a running guest), Ctrl-D leaves.
 *
 * Ctrl-C while a line runs: the terminal leaves raw mode for the whole line, so Ctrl-C is a real
 * SIGINT (to kvmsh and to an `as` it started), and the line holds SIGINT (the API's holdSigint): it
 * is counted at once and never ends the process. A running guest stops, a blocking command is
 * abandoned ("interrupted"), a `source` (nested or not) stops before its next line, and the prompt
 * comes back. At an idle prompt a SIGINT from elsewhere (`kill -INT`) does what Ctrl-C does there:
 * the line is abandoned and a new prompt shown (a SIGINT listener, registered for the prompt's life).
 * @module
 */

import readline from "node:readline";
import process from "node:process";
import { holdSigint } from "../core.ts";
import { complete } from "./complete.ts";
import { runLine } from "./dispatch.ts";
import { out, paint } from "./output.ts";
import type { Session } from "./session.ts";

const HISTORY_MAX = 1000;

/** Where history is kept: $KVMSH_HISTORY or ~/.kvmsh_history. */
export function historyPath(): string {
  return Deno.env.get("KVMSH_HISTORY") ?? `${Deno.env.get("HOME") ?? "."}/.kvmsh_history`;
}

function loadHistory(path: string): string[] {
  try {
    return Deno.readTextFileSync(path).split("\n").filter((l) => l.trim()).slice(-HISTORY_MAX);
  } catch {
    return [];
  }
}

function appendHistory(path: string, line: string): void {
  const text = line.replace(/\n/g, " ") + "\n";
  try {
    // Deno applies `mode` to an existing file too (KVMSH_HISTORY=/dev/null became 0600): give it
    // only when the file is new.
    try {
      Deno.writeTextFileSync(path, text, { append: true, create: false });
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      Deno.writeTextFileSync(path, text, { append: true, createNew: true, mode: 0o600 });
    }
  } catch {
    // History is a convenience: a read-only home must not break the shell.
  }
}

/** Runs the prompt until `exit` or Ctrl-D; returns the exit code. */
export function repl(ctx: Session): Promise<number> {
  const path = historyPath();
  const loaded = loadHistory(path);
  ctx.history.push(...loaded);
  ctx.interactive = true;
  // SIGINTs of the current line already answered with a new line after the terminal's "^C".
  let shown = 0;
  const newlineAfterCaret = () => {
    const n = ctx.lineHold?.count() ?? 0;
    if (n > shown) {
      shown = n;
      out("");
    }
  };
  ctx.onInterrupt = newlineAfterCaret;
  // The terminal went away (hangup: the window closed, the pty's master end shut): readline then
  // hands over the half-typed line as if Enter had been pressed. It was never entered: drop it.
  // Registered before readline's own "end" listener, so it is known when that line arrives.
  let hungUp = false;
  process.stdin.once("end", () => (hungUp = true));
  const rl = readline.createInterface({
    input: process.stdin,
    output: process.stdout,
    terminal: true,
    history: [...loaded].reverse(),
    historySize: HISTORY_MAX,
    removeHistoryDuplicates: false,
    completer: (line: string) => complete(ctx, line),
  });
  const prompt = () => {
    rl.setPrompt(paint("cyan", `kvmsh${ctx.current ? `(${ctx.current})` : ""}> `));
    rl.prompt();
  };
  let chain = Promise.resolve();
  let busy = false;
  // Lines readline has handed over (numbered as they arrive), and the last of them a Ctrl-C
  // discards: lines pasted together with one that is then interrupted are not run, as a terminal
  // discards the input typed ahead of a Ctrl-C.
  let received = 0;
  let discardUpTo = 0;
  /** Ctrl-C at the idle prompt: the half-typed line is abandoned, a new prompt shown. */
  const abandonLine = () => {
    rl.write(null, { ctrl: true, name: "e" });
    rl.write(null, { ctrl: true, name: "u" });
    out("^C");
    prompt();
  };
  // A SIGINT that is no keypress (kill -INT) at the idle prompt. While a line runs, its hold keeps
  // SIGINT from reaching this listener; should one get here anyway, it interrupts the line.
  const onSigint = () => {
    if (busy) ctx.interrupted = true;
    else abandonLine();
  };
  Deno.addSignalListener("SIGINT", onSigint);
  return new Promise((resolve) => {
    rl.on("line", (line: string) => {
      if (hungUp) return;
      const n = ++received;
      chain = chain.then(async () => {
        if (n <= discardUpTo) return;
        busy = true;
        line = line.trim();
        if (line) {
          ctx.history.push(line);
          appendHistory(path, line);
        }
        // Cooked mode and SIGINT held for the whole line: see the module doc.
        const raw = process.stdin.isTTY && process.stdin.isRaw;
        if (raw) process.stdin.setRawMode(false);
        ctx.interrupted = false;
        shown = 0;
        const hold = holdSigint();
        ctx.lineHold = hold;
        try {
          await runLine(ctx, line, { keepGoing: false });
        } finally {
          if (ctx.interrupted) discardUpTo = received;
          newlineAfterCaret();
          ctx.lineHold = undefined;
          hold.release();
          if (raw) process.stdin.setRawMode(true);
          busy = false;
        }
        if (ctx.exitCode !== undefined) rl.close();
        else prompt();
      });
    });
    rl.on("SIGINT", () => {
      if (busy) ctx.interrupted = true; // a ^C keypress typed ahead while a line runs
      else abandonLine();
    });
    rl.on("close", () => {
      chain.then(() => {
        Deno.removeSignalListener("SIGINT", onSigint);
        out("");
        resolve(ctx.exitCode ?? 0);
      });
    });
    out(paint("dim", "kvmsh: KVM at the prompt. help lists the commands; Tab completes; Ctrl-D leaves."));
    prompt();
  });
}
