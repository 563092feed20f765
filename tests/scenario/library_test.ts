/**
 * The scenario library (scripts/*.ts) runs clean on this host: every expectation holds, skips
 * with its reason, or is a named host divergence (XFAIL, with the kernel's answer). Its KTAP is
 * read by a real TAP consumer (npm tap-parser, after ktapToTap14) and the counts agree with the
 * runner's own JSON report.
 */

import assert from "node:assert/strict";
import { kvmTest } from "../kvm_env.ts";
import { ktapToTap14, leaves, parseTap, runRunner } from "./runner_process.ts";

const LIBRARY = ["scripts/guest_memfd_abi.ts", "scripts/gmem_mmap_init_shared.ts"];

kvmTest("scenario library: runs clean, KTAP parsed by tap-parser with the expected counts", async () => {
  const json = await Deno.makeTempFile({ suffix: ".json" });
  try {
    const r = await runRunner([`--json=${json}`, ...LIBRARY]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const report = JSON.parse(await Deno.readTextFile(json));
    const t = report.totals;
    assert.equal(t.fail, 0);
    assert.equal(t.error, 0);
    assert.equal(t.xpass, 0);
    assert.ok(t.pass > 100, `pass ${t.pass}`);

    // Every non-pass line says why: SKIP and XFAIL carry a reason, XFAIL the kernel's answer.
    for (const l of r.stdout.split("\n")) {
      if (/# SKIP\b/.test(l)) assert.match(l, /# SKIP \S/, l);
      if (/# XFAIL\b/.test(l)) assert.match(l, /# XFAIL .+; kernel said: .+/, l);
      assert.doesNotMatch(l, /^\s*not ok/, l);
    }

    const tree = await parseTap(ktapToTap14(r.stdout));
    assert.equal(tree.ok, true);
    assert.equal(tree.count, LIBRARY.length, "one top-level result per file");
    const scenarios = report.files.map((f: { scenarios: unknown[] }) => f.scenarios.length);
    assert.deepEqual(tree.children.map((c) => c.count), scenarios, "one result per scenario in each file");
    assert.deepEqual(scenarios, [5, 4]);
    const leaf = leaves(tree);
    assert.equal(leaf.count, t.pass + t.fail + t.xfail + t.xpass + t.skip, "one result line per step/expectation");
    assert.equal(leaf.fail, 0);
    assert.equal(leaf.todo, t.xfail, "XFAIL lines read as TODO (expected failure)");
    assert.equal(leaf.skip, t.skip);
  } finally {
    await Deno.remove(json);
  }
});
