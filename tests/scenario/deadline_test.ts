/**
 * Hangs: every scenario has a deadline (its `timeoutMs`, else the runner's `--timeout`, 60 s by
 * default). A guest spinning without a timeout of its own is stopped by the kick, the step fails
 * "deadline exceeded", cleanup runs and the next scenario runs. KTAP is streamed, so a run that
 * hangs shows how far it got; Ctrl-C reports the step interrupted and exits 130. Each test runs
 * the real runner process, and is bounded itself (a hang is killed and reported, not waited out).
 */

import assert from "node:assert/strict";
import { kvmTest } from "../kvm_env.ts";
import { runnerArgs, runRunner } from "./runner_process.ts";

const F = "tests/scenario/fixtures";
const ROOT = new URL("../../", import.meta.url).pathname;

kvmTest(
  "scenario deadline: spinning guests and a stuck body stop, fail 'deadline exceeded', clean up, go on",
  async () => {
    const t0 = performance.now();
    const r = await runRunner(["--timeout", "1", `${F}/spin.ts`], { killAfterMs: 30_000 });
    const out = r.stdout;
    assert.equal(r.killed, false, `the runner hung:\n${out}${r.stderr}`);
    assert.ok(performance.now() - t0 < 20_000, "stopped near the deadlines");
    assert.equal(r.code, 1, out + r.stderr);
    // A step spinning past the scenario's own 800 ms: its line fails with the reason; later steps don't run.
    assert.match(out, /^ {2}ok 1 a line before the spin$/m);
    assert.match(
      out,
      /^ {2}not ok 2 spin forever # deadline exceeded \(scenario budget 800 ms\)$/m,
    );
    assert.doesNotMatch(out, /must not run after the deadline/);
    assert.match(out, /^ {2}# cleanup ran after the spin$/m);
    assert.match(out, /^not ok 1 fixture: a step spins/m);
    // A body spinning without a step, under the runner's --timeout 1.
    assert.match(out, /^ {2}not ok 1 scenario body # deadline exceeded \(scenario budget 1 s\)$/m);
    assert.match(out, /^ {2}# cleanup ran after the body's spin$/m);
    assert.match(out, /^not ok 2 fixture: the body spins/m);
    // A body waiting on a promise that never settles is abandoned at its deadline.
    assert.match(
      out,
      /^ {2}not ok 1 wait # deadline exceeded \(scenario budget 300 ms\); the body was still waiting$/m,
    );
    assert.match(out, /^ {2}# cleanup ran after the wait$/m);
    assert.match(out, /^not ok 3 fixture: the body waits forever/m);
    // ... and the next scenario runs.
    assert.match(out, /^ {2}ok 1 the next scenario runs$/m);
    assert.match(out, /^ok 4 fixture: runs after the others$/m);
  },
);

Deno.test("scenario runner: --timeout needs a positive number of seconds (usage error 2)", async () => {
  for (const bad of [["--timeout"], ["--timeout", "0"], ["--timeout=abc"], ["--timeout", "-1"]]) {
    const r = await runRunner([...bad, `${F}/pass.ts`]);
    assert.equal(r.code, 2, `${bad.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, /--timeout needs a number of seconds/);
  }
});

/** Starts the runner and collects stdout as it comes. */
function startRunner(args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: runnerArgs(args),
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  let text = "";
  const dec = new TextDecoder();
  const reading = (async () => {
    for await (const chunk of child.stdout) text += dec.decode(chunk, { stream: true });
  })();
  const stderr = new Response(child.stderr).text();
  return {
    child,
    text: () => text,
    /** Waits until stdout matches `re` (or `ms` passes). */
    async waitFor(re: RegExp, ms: number): Promise<boolean> {
      const end = performance.now() + ms;
      while (performance.now() < end) {
        if (re.test(text)) return true;
        await new Promise((r) => setTimeout(r, 20));
      }
      return re.test(text);
    },
    async done() {
      const s = await child.status;
      await reading;
      return { code: s.code, signal: s.signal, stdout: text, stderr: await stderr };
    },
  };
}

kvmTest("scenario runner streams KTAP: a hang shows every line up to the step that hangs", async () => {
  const run = startRunner(["--timeout", "60", `${F}/spin_long.ts`]);
  try {
    const seen = await run.waitFor(/^ {2}# step: spin$/m, 15_000);
    assert.ok(seen, `nothing streamed while the guest spins:\n${run.text()}`);
    const text = run.text();
    assert.match(text, /^KTAP version 1\n# kernel: /);
    assert.match(text, /^1\.\.2$/m, "the file's plan (two scenarios) comes first");
    assert.match(text, /^ {2}KTAP version 1\n {2}# Subtest: fixture: spins until stopped\n/m);
    assert.match(text, /^ {2}ok 1 a line before the spin$/m);
    assert.doesNotMatch(text, /^ok 1 /m, "the scenario's own result is not out yet");
  } finally {
    run.child.kill("SIGKILL");
    await run.done();
  }
});

kvmTest(
  "scenario runner: Ctrl-C reports the running step interrupted, cleans up, skips the rest, exits 130",
  async () => {
    const run = startRunner(["--timeout", "60", "--bisect", `${F}/spin_long.ts`]);
    let r;
    try {
      assert.ok(await run.waitFor(/^ {2}# step: spin$/m, 15_000), run.text());
      await new Promise((res) => setTimeout(res, 200)); // inside KVM_RUN by now
      run.child.kill("SIGINT");
      const timer = setTimeout(() => run.child.kill("SIGKILL"), 15_000);
      r = await run.done();
      clearTimeout(timer);
    } catch (e) {
      run.child.kill("SIGKILL");
      await run.done();
      throw e;
    }
    assert.equal(r.signal, null, `killed: ${r.stdout}${r.stderr}`);
    assert.equal(r.code, 130, r.stdout + r.stderr);
    assert.match(r.stdout, /^ {2}not ok 2 spin # ERROR interrupted \(SIGINT, Ctrl-C\)$/m);
    assert.doesNotMatch(r.stdout, /deadline exceeded/);
    assert.match(r.stdout, /^ {2}# cleanup ran$/m);
    assert.match(r.stdout, /^not ok 1 fixture: spins until stopped # ERROR interrupted/m);
    assert.match(r.stdout, /^ok 2 fixture: after the spinning one # SKIP not run: the run was interrupted/m);
    assert.doesNotMatch(r.stdout, /runs unless interrupted/);
  },
);

Deno.test("scenario deadline: an abandoned body's late claim is dropped, never recorded in the next scenario", async () => {
  const r = await runRunner([`${F}/late_claim.ts`], { killAfterMs: 30_000 });
  assert.equal(r.code, 1, r.stdout + r.stderr); // the abandoned scenario failed its deadline
  assert.match(r.stdout, /^ {2}not ok 1 wait past the budget # deadline exceeded/m);
  assert.doesNotMatch(r.stdout, /late claim/);
  assert.match(r.stdout, /^ok 2 fixture: next$/m);
});
