/**
 * The shell proper: an interactive prompt on a terminal, `-c "cmd; cmd"`, commands piped on stdin,
 * or one command from the arguments (`kvmsh caps --json`). launch.ts parses kvmsh's options and
 * hands over here (or to the scenario runner).
 * @module
 */

import { runCommand, runLine } from "./dispatch.ts";
import { Session } from "./session.ts";
import { kvmDevicePath } from "../core.ts";
import type { ShellArgv } from "./argv.ts";

export type { ShellArgv } from "./argv.ts";

async function runStdin(ctx: Session, keepGoing: boolean): Promise<number> {
  const dec = new TextDecoder();
  let buf = "";
  const feed = async (line: string): Promise<boolean> => {
    const ok = await runLine(ctx, line, { keepGoing });
    return ok || keepGoing;
  };
  for await (const chunk of Deno.stdin.readable) {
    buf += dec.decode(chunk, { stream: true });
    let start = 0;
    for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n", start)) {
      const line = buf.slice(start, i);
      start = i + 1;
      if (!(await feed(line)) || ctx.exitCode !== undefined) return ctx.status;
    }
    buf = buf.slice(start);
  }
  if (buf.trim() && ctx.exitCode === undefined) await feed(buf);
  return ctx.status;
}

/**
 * Runs the shell for a parsed command line (`kind: "shell"`, see argv.ts) and returns the exit
 * status. launch.ts loads this module from the start-up bundle or the sources.
 */
export async function runShell(args: ShellArgv): Promise<number> {
  const { json, keepGoing, scripts, rest } = args;
  const ctx = new Session(kvmDevicePath());
  ctx.runLine = (line) => runLine(ctx, line);
  ctx.json = json;
  try {
    // Exit status (help tells it): see Session.status.
    if (rest.length) {
      ctx.history.push(rest.join(" "));
      await runCommand(ctx, rest, { jsonBare: rest[0] === "caps" });
      return ctx.status;
    }
    if (scripts.length) {
      for (const s of scripts) {
        const ok = await runLine(ctx, s, { keepGoing });
        if ((!ok && !keepGoing) || ctx.exitCode !== undefined) break;
      }
      return ctx.status;
    }
    // The prompt (node:readline) loads only when interactive: node: modules cost start-up time.
    if (Deno.stdin.isTerminal()) return await (await import("./repl.ts")).repl(ctx);
    return await runStdin(ctx, keepGoing);
  } finally {
    ctx.recorder?.stop();
    ctx.close();
  }
}
