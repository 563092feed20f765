/**
 * `help`, `history`, `source`, `echo`, `reset`, `exit`, and the hidden `debug pid` and `debug leak-fd` (tests).
 * @module
 */

import { UsageError } from "../usage_error.ts";
import { CommandFailed, osReason } from "../failure.ts";
import { paint } from "../output.ts";
import { small } from "../values.ts";
import { COMMANDS } from "../table.ts";
import type { Command, CommandImpls } from "./types.ts";

/** Files `debug leak-fd` opened on purpose (kept referenced: never closed). */
const leaked: Deno.FsFile[] = [];

/** What `help` says about kvmsh's exit status (Session.status). */
export const EXIT_STATUS: string[] = [
  "exit status (-c, commands on stdin, one command as arguments; at the prompt only `exit N` sets it):",
  "  0    every command succeeded (and the last run wrote no exit code)",
  "  N    the last run's (continue's, step's) guest exit code: the value written to port 0xF4",
  "       (isa-debug-exit), & 0xff, unless a later command fails",
  "  1    a kernel or runtime failure, or a run, continue or step stopped by its timeout, an assertion",
  "       (ucall assert) or an exit kvmsh does not resume from (SHUTDOWN, MMIO, INTERNAL_ERROR, an",
  "       unhandled port …);",
  "       the script stops there unless --keep-going (which keeps a failure's status to the end)",
  "  2    a usage error (unknown command, bad argument): the same for `kvmsh frob` and `kvmsh -c frob`",
  "  130  Ctrl-C (SIGINT) stopped the guest and the script",
  "  `exit` without a code ends with the status so far, as the end of the script would",
];

/** Help text for one command, from the table. */
export function helpFor(c: Command): string[] {
  const lines = [`${paint("bold", c.usage)}`, `  ${c.summary}`];
  for (const f of c.flags ?? []) {
    lines.push(`  --${f.name}${f.value ? ` ${f.value}` : ""}${f.required ? " (required)" : ""}: ${f.help}`);
  }
  lines.push(`  example: ${c.example}`);
  return lines;
}

/** The misc commands' behaviour (their table entries: specs/misc.ts). */
export const miscImpl: CommandImpls = {
  "help": {
    run(_ctx, a) {
      const all = COMMANDS.filter((c) => !c.hidden);
      const want = a.pos.join(" ").replace(/^x\/.*/, "x");
      // `run`'s summary points here ("help: exit status"): that section alone.
      if (want === "exit status") return { lines: EXIT_STATUS, data: { exitStatus: EXIT_STATUS } };
      // Asked by name, the hidden test hooks (`help debug`) answer too: they exist.
      const chosen = want ? COMMANDS.filter((c) => c.name === want || c.name.startsWith(`${want} `)) : all;
      if (!chosen.length && want === "scenario") {
        // Not a shell command: kvmsh's own command line runs scenarios (argv.ts).
        throw new UsageError(
          "'scenario' is not a shell command: run `./kvmsh scenario <file.ts>…` from your shell (`./kvmsh scenario --help`)",
        );
      }
      if (!chosen.length) throw new UsageError(`no command '${want}' (help lists them all)`);
      const lines = want ? chosen.flatMap(helpFor) : [
        "kvmsh commands (help <command> for flags and an example; numbers: 4096, 0x1000, 4K, 2M, 1G):",
        ...chosen.map((c) => `  ${c.usage.padEnd(50)} ${c.summary}`),
        "global flags: --json (one JSON object per command); -c 'cmd; cmd', --keep-going on the command line",
        ...EXIT_STATUS,
      ];
      return {
        lines,
        data: {
          // What the text says of each: `help <command>` lists the flags too.
          commands: chosen.map((c) => ({
            name: c.name,
            usage: c.usage,
            summary: c.summary,
            flags: (c.flags ?? []).map((f) => ({
              name: f.name,
              ...(f.value ? { value: f.value } : {}),
              ...(f.required ? { required: true } : {}),
              help: f.help,
            })),
            example: c.example,
          })),
        },
      };
    },
  },
  "history": {
    run(ctx, a) {
      const n = a.pos[0] === undefined ? ctx.history.length : small(a.pos[0], "n");
      const start = Math.max(0, ctx.history.length - n);
      const h = ctx.history.slice(start);
      return { lines: h.map((l, i) => `${String(start + i + 1).padStart(5)}  ${l}`), data: { history: h } };
    },
  },
  "source": {
    async run(ctx, a) {
      if (ctx.depth >= 16) throw new UsageError("source nested too deeply (16)");
      let text: string;
      try {
        text = await Deno.readTextFile(a.pos[0]);
      } catch (e) {
        throw new UsageError(`source: cannot read '${a.pos[0]}': ${osReason(e)}`);
      }
      let n = 0;
      for (const line of text.split("\n")) {
        ctx.depth++;
        let ok: boolean;
        try {
          ok = await ctx.runLine(line);
        } finally {
          ctx.depth--;
        }
        if (ctx.interrupted) {
          // Ctrl-C stops the whole source (and every source around it), at the prompt too.
          throw new CommandFailed(`source ${a.pos[0]}: interrupted (SIGINT) at line ${n + 1}`, 130, "Interrupted");
        }
        if (!ok) {
          // The status stays the failing line's (2 for its usage error, 1 for a kernel error).
          throw new CommandFailed(
            `source ${a.pos[0]}: stopped at line ${n + 1}`,
            ctx.failStatus ?? 1,
            "SourceStopped",
          );
        }
        if (ctx.exitCode !== undefined) break;
        n++;
      }
      return { lines: [], data: { file: a.pos[0], lines: n } };
    },
  },
  "echo": {
    run(_ctx, a) {
      return { lines: [a.pos.join(" ")], data: { echo: a.pos.join(" ") } };
    },
  },
  "reset": {
    run(ctx) {
      ctx.closeAll();
      return { lines: ["every VM closed"], data: { reset: true } };
    },
    record() {
      return [{ expr: "kvm.vms.forEach((v) => v.close())" }];
    },
  },
  "exit": {
    run(ctx, a) {
      // Without a code: the status the script has so far (a failure kept by --keep-going is not
      // lost); at the prompt, 0, as Ctrl-D.
      const code = a.pos[0] === undefined ? (ctx.interactive ? 0 : ctx.status) : small(a.pos[0], "exit code", 255);
      ctx.exitCode = code;
      return { lines: [], data: { exit: ctx.exitCode } };
    },
  },
  "debug pid": {
    run() {
      return { lines: [`pid ${Deno.pid}`], data: { pid: Deno.pid } };
    },
  },
  "debug leak-fd": {
    run() {
      if (Deno.env.get("KVMSH_TEST_HOOKS") !== "1") {
        throw new UsageError("debug leak-fd is a test hook: set KVMSH_TEST_HOOKS=1");
      }
      leaked.push(Deno.openSync("/dev/null"));
      return { lines: [`leaked an fd on /dev/null (${leaked.length} so far)`], data: { leaked: leaked.length } };
    },
  },
};
