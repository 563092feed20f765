/**
 * shell/launch.ts: what both entry points do with the command line — usage errors and `-h` load
 * no shell; a shell that fails to load is one plain line (no colour codes on a plain stderr).
 */

import { deepStrictEqual as eq } from "node:assert/strict";
import { launch } from "../../shell/launch.ts";

async function captured(argv: string[], load: () => Promise<never>): Promise<{ code: number; err: string[] }> {
  const err: string[] = [];
  const orig = console.error;
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    return { code: await launch(argv, load), err };
  } finally {
    console.error = orig;
  }
}

Deno.test("launch: a shell that fails to load is one line without colour codes; usage errors load nothing", async () => {
  const loadFails = () => Promise.reject(new Error("\x1b[31mModule not found\x1b[0m \x1b[1;33mx.ts\x1b[0m"));
  if (!Deno.stderr.isTerminal()) {
    eq(await captured(["-c", "vm create"], loadFails), { code: 1, err: ["kvmsh: Module not found x.ts"] });
  }
  let loaded = false;
  const load = () => {
    loaded = true;
    return Promise.reject(new Error("not reached"));
  };
  eq((await captured(["--bogus"], load)).code, 2);
  eq(loaded, false);
});
