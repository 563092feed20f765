/**
 * holdSigint (the shell holds SIGINT over a whole command) and the one-isolate-at-a-time rule of
 * the kick's process-wide SIGINT handler. Each case runs in a child process (kick_hold_child.ts).
 */

import { deepStrictEqual as eq, match, ok } from "node:assert/strict";
import { kvmTest } from "../kvm_env.ts";

const CHILD = new URL("./kick_hold_child.ts", import.meta.url).pathname;

async function child(mode: string, env: Record<string, string> = {}, onReady?: (pid: number) => void) {
  // setsid: its own process group, so the `asm` case can signal the group as a terminal would.
  const c = new Deno.Command("setsid", {
    args: [Deno.execPath(), "run", "--quiet", "--allow-all", CHILD, mode],
    stdout: "piped",
    stderr: "piped",
    env,
  }).spawn();
  const stderr = new Response(c.stderr).text();
  const reader = c.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  const killer = setTimeout(() => c.kill("SIGKILL"), 30_000);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
      if (onReady && out.includes("ready\n")) {
        onReady(c.pid);
        onReady = undefined;
      }
    }
    const status = await c.status;
    const json = out.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
    return { json, status, stderr: await stderr };
  } finally {
    clearTimeout(killer);
  }
}

kvmTest("holdSigint: a SIGINT is counted and kept; a run under it stops at once; release restores", async () => {
  const { json, status, stderr } = await child("hold");
  const [r] = json;
  ok(r, stderr);
  eq(r.counted, 1, "the hold counted the SIGINT");
  eq(r.stop, "interrupt", "a run after a Ctrl-C under the same hold stops before it starts");
  ok(r.elapsedMs < 1000, `stopped after ${r.elapsedMs} ms`);
  eq(r.initial, "0", "SIG_DFL at start");
  ok(r.before !== "0", "the kick had Deno install its handler (it would, over the kick's, ~0.4 s after start)");
  eq(r.after, r.before, "the disposition before the hold is back");
  eq(r.again, 3, "and runs work");
  eq(json.length, 1, "the second SIGINT (no hold) ended the process");
  eq(status.signal, "SIGINT");
});

kvmTest("holdSigint({ synchronous }): SIGINTs kept, and Deno's own handler not installed for it", async () => {
  const { json, status, stderr } = await child("sync");
  const [r] = json;
  ok(r, stderr);
  eq(r.initial, "0", "SIG_DFL at start");
  ok(r.held !== "0", "the kick's handler while held");
  eq(r.counted, 1, "the SIGINT was counted, and the process lives");
  eq(r.afterSync, "0", "SIG_DFL again: Deno was not made to install its handler (~0.5 ms)");
  eq(r.stop, "exit", "the run after the hold runs to its HLT (the SIGINT was the hold's)");
  eq(r.afterRun, "0", "nor by the run after it (the same kick)");
  eq(status.code, 0);
});

kvmTest(
  "a Worker's interruptible run leaves Deno's SIGINT handler in place: a listener still hears Ctrl-C",
  async () => {
    const { json, status, stderr } = await child("worker-run");
    const [r] = json;
    ok(r, stderr);
    eq(r.worker, "timeout", "the worker's guest spun past ~0.5 s after start");
    eq(r.heard, 1, `the listener heard the SIGINT (disposition ${r.disposition})`);
    ok(r.disposition !== "0");
    eq(status.code, 0);
  },
);

kvmTest("assemble: an `as` that dies of SIGINT is an InterruptedError, and the work dir is removed", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/bin`);
    await Deno.mkdir(`${dir}/tmp`);
    await Deno.writeTextFile(`${dir}/bin/as`, "#!/bin/sh\nsleep 30\n", { mode: 0o755 });
    const env = { PATH: `${dir}/bin:${Deno.env.get("PATH")}`, TMPDIR: `${dir}/tmp`, XDG_CACHE_HOME: `${dir}/cache` };
    const { json, stderr } = await child("asm", env, (pid) => {
      setTimeout(() => new Deno.Command("kill", { args: ["-INT", "--", `-${pid}`] }).outputSync(), 500);
    });
    ok(json[0], stderr);
    match(json[0].error, /^InterruptedError: interrupted \(SIGINT\) while as ran$/);
    eq(json[0].counted, 1);
    eq([...Deno.readDirSync(`${dir}/tmp`)].map((e) => e.name), [], "no kvmsh-asm-* directory left");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

kvmTest("two isolates: an interruptible run while a Worker's has the SIGINT handler is refused clearly", async () => {
  const { json, status, stderr } = await child("isolates");
  const [r] = json;
  ok(r, stderr);
  match(r.refused, /another isolate \(Worker\) of this process has the Ctrl-C handler armed/);
  eq(r.deadlineOnly, "exit", "a run Ctrl-C may not stop is not refused");
  eq(r.worker, "timeout", "the worker's run went on undisturbed");
  eq(r.after, "exit", "once the worker's run ended, interruptible runs work here");
  eq(r.disposition, r.before, "the disposition from before is back");
  eq(status.code, 0, stderr);
});
