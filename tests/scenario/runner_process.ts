/**
 * Runs the real scenario runner (scenario/main.ts, as `deno task scenario` does) in a child process,
 * and adapts KTAP for a TAP consumer (npm tap-parser).
 * @module
 */

import { Parser } from "tap-parser";

const ROOT = new URL("../../", import.meta.url);

/** What the runner printed and how it exited. */
export interface RunnerOutput {
  code: number;
  stdout: string;
  stderr: string;
  /** The runner outlived `killAfterMs` and was killed. */
  killed: boolean;
}

/** The deno arguments that run the scenario runner (scenario/main.ts) with `args`. */
export function runnerArgs(args: string[]): string[] {
  return [
    "run",
    "--quiet",
    "--allow-ffi",
    "--allow-read",
    "--allow-write",
    "--allow-run",
    "--allow-env",
    "scenario/main.ts",
    ...args,
  ];
}

/** Options of {@link runRunner}. */
export interface RunnerOptions {
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Kill the runner after this long (a hang fails the test instead of hanging it); default 120 s. */
  killAfterMs?: number;
  /** Run this program with these arguments instead of `deno run … scenario/main.ts` (e.g. under unshare). */
  command?: { program: string; args: string[] };
}

/** Runs `deno run … scenario/main.ts <args>` from the repo root. */
export async function runRunner(args: string[], opts: RunnerOptions = {}): Promise<RunnerOutput> {
  const child = new Deno.Command(opts.command?.program ?? Deno.execPath(), {
    args: opts.command?.args ?? runnerArgs(args),
    cwd: ROOT.pathname,
    env: opts.env,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    child.kill("SIGKILL");
  }, opts.killAfterMs ?? 120_000);
  try {
    const out = await child.output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr), killed };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * KTAP → what tap-parser reads. The adapter exists because tap-parser speaks TAP 14, and KTAP
 * (Documentation/dev-tools/ktap.rst) differs from it in four ways our output uses:
 * - the version line is `KTAP version 1` (TAP: `TAP version 14`) → the top one is rewritten;
 * - a KTAP subtest opens with its own version line (TAP 14: a `# Subtest:` line, which we also
 *   print) → nested version lines are dropped;
 * - KTAP indents a subtest by two spaces, TAP 14 by four → each level is re-indented;
 * - XFAIL is a KTAP directive, not a TAP one → `# TODO XFAIL …` (TAP's expected failure);
 * - KTAP lets a plan be omitted where the count is not known in advance, and the streaming runner
 *   omits it for a scenario's lines (KTAP has no trailing plan); TAP requires a plan but allows it
 *   at the end → the adapter appends `1..N`, N counted from the results, to each subtest without one.
 * Everything else (results, SKIP, diagnostics) passes through unchanged.
 */
export function ktapToTap14(ktap: string): string {
  // Per open level: results seen and whether a plan came.
  const open: { count: number; planned: boolean }[] = [];
  const out: string[] = [];
  const close = (depth: number) => {
    while (open.length > depth + 1) {
      const lvl = open.pop()!;
      if (!lvl.planned) out.push("    ".repeat(open.length) + `1..${lvl.count}`);
    }
  };
  for (const line of ktap.split("\n")) {
    const m = line.match(/^((?: {2})*)(.*)$/)!;
    const depth = m[1].length / 2;
    let body = m[2];
    if (body === "KTAP version 1") {
      close(depth - 1);
      open[depth] = { count: 0, planned: false };
      open.length = depth + 1;
      if (depth > 0) continue;
      body = "TAP version 14";
    } else if (/^1\.\.\d+/.test(body)) {
      if (open[depth]) open[depth].planned = true;
    } else if (/^(not )?ok \d+/.test(body)) {
      close(depth);
      if (open[depth]) open[depth].count++;
    }
    body = body.replace(/ # XFAIL\b/, " # TODO XFAIL");
    out.push("    ".repeat(depth) + body);
  }
  close(0);
  return out.join("\n");
}

/** A parsed (sub)test: its counts and children, as tap-parser reports them. */
export interface TapTree {
  count: number;
  pass: number;
  fail: number;
  skip: number;
  todo: number;
  ok: boolean;
  children: TapTree[];
}

/** Parses TAP 14 with tap-parser into a tree of results. */
export function parseTap(tap: string): Promise<TapTree> {
  const wire = (p: Parser): Promise<TapTree> => {
    const children: Promise<TapTree>[] = [];
    p.on("child", (c: Parser) => children.push(wire(c)));
    return new Promise((resolve) => {
      p.on(
        "complete",
        async (r: { count: number; pass: number; fail: number; skip: number; todo: number; ok: boolean }) => {
          resolve({
            count: r.count,
            pass: r.pass,
            fail: r.fail,
            skip: r.skip,
            todo: r.todo,
            ok: r.ok,
            children: await Promise.all(children),
          });
        },
      );
    });
  };
  const p = new Parser();
  const done = wire(p);
  p.end(tap);
  return done;
}

/** Leaf counts of a tree (results with no children of their own). */
export function leaves(t: TapTree): { count: number; fail: number; skip: number; todo: number } {
  if (t.children.length === 0) return { count: t.count, fail: t.fail, skip: t.skip, todo: t.todo };
  const sum = { count: 0, fail: 0, skip: 0, todo: 0 };
  for (const c of t.children) {
    const l = leaves(c);
    sum.count += l.count;
    sum.fail += l.fail;
    sum.skip += l.skip;
    sum.todo += l.todo;
  }
  return sum;
}
