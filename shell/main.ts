/**
 * kvmsh's entry point: an interactive prompt on a terminal, `-c "cmd; cmd"`, commands piped on
 * stdin, or one command from the arguments (`kvmsh caps --json`). `kvmsh scenario <files…>`
 * hands over to the scenario runner.
 * @module
 */

import { runCommand, runLine } from "./dispatch.ts";
import { Session } from "./session.ts";
import { err } from "./output.ts";

const USAGE = `usage: kvmsh [--json] [--keep-going] [-c "cmd; cmd"] [command …]
  kvmsh                      interactive prompt (on a terminal), or commands from stdin
  kvmsh -c "vm create; caps"  run commands, stop at the first failure unless --keep-going
  kvmsh caps [--json] [--all] [cap…]
  kvmsh scenario <file.ts>…   run scenarios (KTAP)
  kvmsh help                  every command, and the exit status`;

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

async function main(argv: string[]): Promise<number> {
  let json = false;
  let keepGoing = false;
  const scripts: string[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--json") json = true;
    else if (a === "--keep-going" || a === "-k") keepGoing = true;
    else if (a === "-c") {
      if (i + 1 >= argv.length) {
        err("kvmsh: -c needs a command string");
        return 2;
      }
      scripts.push(argv[++i]);
    } else if (a === "-h" || a === "--help") {
      console.log(USAGE);
      return 0;
    } else if (a.startsWith("-")) {
      err(`kvmsh: unknown option '${a}'\n${USAGE}`);
      return 2;
    } else break;
  }
  const rest = argv.slice(i);
  if (rest[0] === "scenario") {
    // The scenario runner (scenario/ through mod.ts) loads only here: the shell itself imports core.ts.
    const { runScenarioCli } = await import("../mod.ts");
    return await runScenarioCli(rest.slice(1));
  }
  const ctx = new Session();
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

Deno.exit(await main(Deno.args));
