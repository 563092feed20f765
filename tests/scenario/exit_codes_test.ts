/**
 * The runner's exit codes (kselftest): pass 0, fail 1, all skipped 4, skip with --bisect 125,
 * a file without scenarios 1. Each runs the real runner process on a fixture.
 */

import assert from "node:assert/strict";
import { kvmTest } from "../kvm_env.ts";
import { runRunner } from "./runner_process.ts";

const F = "tests/scenario/fixtures";

kvmTest("scenario runner: every expectation holds → exit 0", async () => {
  const r = await runRunner([`${F}/pass.ts`]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^KTAP version 1\n/);
  assert.match(r.stdout, /^ok 1 fixture: pass$/m);
});

kvmTest("scenario runner: a contradicted expectation → exit 1 with the kernel's answer", async () => {
  const r = await runRunner([`${F}/fail.ts`]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /^ {2}not ok 1 a one-byte guest_memfd is ENOSPC .* # expected ENOSPC, got .*EINVAL/m);
  assert.match(r.stdout, /^not ok 1 fixture: fail/m);
  const bisect = await runRunner(["--bisect", `${F}/fail.ts`]);
  assert.equal(bisect.code, 1, "--bisect leaves failure at 1 (bad commit)");
});

kvmTest("scenario runner: all skipped → exit 4 (KSFT_SKIP); --bisect → 125", async () => {
  const r = await runRunner([`${F}/skip.ts`]);
  assert.equal(r.code, 4, r.stdout + r.stderr);
  assert.match(r.stdout, /^ok 1 fixture: needs a future kernel # SKIP kernel .* is older than 999\.0$/m);
  assert.match(r.stdout, /^ok 2 fixture: needs a missing vendor module # SKIP needs module kvm_nonexistent/m);
  const b = await runRunner(["--bisect", `${F}/skip.ts`]);
  assert.equal(b.code, 125, b.stdout + b.stderr);
});

kvmTest("scenario runner: pass + skip → 0; a file registering nothing → 1", async () => {
  assert.equal((await runRunner([`${F}/pass.ts`, `${F}/skip.ts`])).code, 0);
  const e = await runRunner([`${F}/empty.ts`]);
  assert.equal(e.code, 1);
  assert.match(e.stdout, /no scenario\(\) registered/);
});

Deno.test("scenario runner: usage errors exit 2 without running anything", async () => {
  assert.equal((await runRunner([])).code, 2);
  const r = await runRunner(["--frobnicate", `${F}/pass.ts`]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown option '--frobnicate'/);
});

kvmTest("scenario runner: --json to stdout (KTAP to stderr) and --json=FILE", async () => {
  const r = await runRunner(["--json", `${F}/fail.ts`]);
  assert.equal(r.code, 1);
  const j = JSON.parse(r.stdout);
  assert.equal(j.format, "kvmsh-scenario-report");
  assert.equal(j.exitCode, 1);
  assert.equal(j.totals.fail, 1);
  assert.equal(j.files[0].scenarios[0].lines[0].status, "fail");
  assert.match(r.stderr, /^KTAP version 1/);
  const file = await Deno.makeTempFile({ suffix: ".json" });
  try {
    const f = await runRunner([`--json=${file}`, `${F}/pass.ts`]);
    assert.equal(f.code, 0);
    assert.match(f.stdout, /^KTAP version 1/);
    const k = JSON.parse(await Deno.readTextFile(file));
    assert.equal(k.totals.pass, 3);
    assert.equal(typeof k.host.kernel, "string");
  } finally {
    await Deno.remove(file);
  }
});
