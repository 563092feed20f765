/**
 * The interactive prompt: node:readline line editing, persistent history, tab completion,
 * Ctrl-C abandons the line (or stops a running guest), Ctrl-D leaves.
 * @module
 */

import readline from "node:readline";
import process from "node:process";
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
  try {
    Deno.writeTextFileSync(path, line.replace(/\n/g, " ") + "\n", { append: true, create: true, mode: 0o600 });
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
  // A guest run blocks this thread in KVM_RUN: leave raw mode meanwhile so Ctrl-C is a real
  // SIGINT, which the API's kick (the watchdog) turns into a stopped guest.
  ctx.blocking = <T>(fn: () => T): T => {
    const raw = process.stdin.isTTY && process.stdin.isRaw;
    if (raw) process.stdin.setRawMode(false);
    try {
      return fn();
    } finally {
      if (raw) process.stdin.setRawMode(true);
    }
  };
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
  return new Promise((resolve) => {
    rl.on("line", (line: string) => {
      chain = chain.then(async () => {
        busy = true;
        line = line.trim();
        if (line) {
          ctx.history.push(line);
          appendHistory(path, line);
        }
        try {
          await runLine(ctx, line, { keepGoing: false });
        } finally {
          busy = false;
        }
        if (ctx.exitCode !== undefined) rl.close();
        else prompt();
      });
    });
    rl.on("SIGINT", () => {
      if (busy && ctx.interrupt) {
        ctx.interrupt();
        return;
      }
      rl.write(null, { ctrl: true, name: "e" });
      rl.write(null, { ctrl: true, name: "u" });
      out("^C");
      prompt();
    });
    rl.on("close", () => {
      chain.then(() => {
        out("");
        resolve(ctx.exitCode ?? 0);
      });
    });
    out(paint("dim", "kvmsh: KVM at the prompt. help lists the commands; Tab completes; Ctrl-D leaves."));
    prompt();
  });
}
