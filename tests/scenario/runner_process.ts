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
}

/** Runs `deno run … scenario/main.ts <args>` from the repo root. */
export async function runRunner(args: string[]): Promise<RunnerOutput> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--allow-ffi",
      "--allow-read",
      "--allow-write",
      "--allow-run",
      "--allow-env",
      "scenario/main.ts",
      ...args,
    ],
    cwd: ROOT.pathname,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/**
 * KTAP → what tap-parser reads. tap-parser (TAP 14) takes neither `KTAP version 1` nor KTAP's
 * two-space subtest indentation: the top version line becomes `TAP version 14`, nested version
 * lines are dropped (TAP 14 subtests open with `# Subtest:`), each indentation level becomes four
 * spaces, and the XFAIL directive (not in TAP) becomes `# TODO XFAIL …` (TAP's expected failure).
 */
export function ktapToTap14(ktap: string): string {
  return ktap.split("\n").flatMap((line) => {
    const m = line.match(/^((?: {2})*)(.*)$/)!;
    const depth = m[1].length / 2;
    let body = m[2];
    if (body === "KTAP version 1") {
      if (depth > 0) return [];
      body = "TAP version 14";
    }
    body = body.replace(/ # XFAIL\b/, " # TODO XFAIL");
    return ["    ".repeat(depth) + body];
  }).join("\n");
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
