/**
 * Scenario semantics without /dev/kvm: a failed expectation ends its step with the reason, XFAIL
 * and XPASS, cleanup that runs after a failure, skips with reasons, sync and async steps.
 */

import assert from "node:assert/strict";
import { FakeKernelLog } from "../../kvm/kmsg.ts";
import { runEntries } from "../../scenario/runner.ts";
import type { ScenarioEntry } from "../../scenario/registry.ts";
import { expectBytes, expectEqual, expectOk, expectTrue } from "../../scenario/expect.ts";
import { exitCode, totals } from "../../scenario/result.ts";
import { resultLine } from "../../scenario/ktap.ts";

const run = (fn: ScenarioEntry["fn"], options: ScenarioEntry["options"] = {}) =>
  runEntries("t", [{ name: "s", fn, options }], new FakeKernelLog()).then((f) => f.scenarios[0]);

Deno.test("scenario: a failed expectation ends its step; the next step runs; cleanup runs last", async () => {
  const order: string[] = [];
  const s = await run(async (t) => {
    t.defer(() => order.push("cleanup"));
    await t.step("first", () => {
      expectEqual(1 + 1, 3, "arithmetic is wrong on purpose");
      order.push("not reached");
    });
    await t.step("second", async () => {
      await Promise.resolve();
      order.push("second");
      expectTrue(true, "holds");
    });
  });
  assert.deepEqual(order, ["second", "cleanup"]);
  assert.deepEqual(s.lines.map((l) => [l.name, l.status]), [
    ["arithmetic is wrong on purpose", "fail"],
    ["holds", "pass"],
    ["kernel log has no WARN/BUG/Oops/lockdep splat", "pass"],
  ]);
  assert.equal(s.lines[0].reason, "got 2, expected 3");
  assert.equal(s.status, "fail");
});

Deno.test("scenario: xfail turns a failure into XFAIL with the actual answer, a pass into XPASS", async () => {
  const s = await run((t) => {
    t.xfail("known divergence", () => expectBytes(new Uint8Array([1, 2]), [1, 3], "bytes"));
  });
  assert.equal(s.lines[0].status, "xfail");
  assert.equal(s.lines[0].reason, "known divergence; kernel said: byte 0x1 is 0x2, expected 0x3 (1 of 2 differ)");
  assert.equal(resultLine(1, "bytes", "xfail", s.lines[0].reason), `ok 1 bytes # XFAIL ${s.lines[0].reason}`);
  assert.equal(exitCode(totals([{ file: "t", status: "pass", scenarios: [s] }])), 0, "XFAIL does not fail the run");
  const p = await run((t) => t.xfail("stale mark", () => expectTrue(true, "holds now")));
  assert.equal(p.lines[0].status, "xpass");
  assert.equal(exitCode(totals([{ file: "t", status: "xpass", scenarios: [p] }])), 1, "XPASS fails, as kselftest");
  const off = await run((t) => t.xfail("other hosts only", () => expectTrue(false, "plain"), { when: false }));
  assert.equal(off.lines[0].status, "fail");
});

Deno.test("scenario: unexpected errors, skips, async expectOk and cleanup failures are reported", async () => {
  const s = await run(async (t) => {
    await t.step("throws", () => {
      throw new RangeError("bad input");
    });
    await t.step("skips", () => t.skip("needs a thing"));
    const v = await expectOk(() => Promise.resolve(42), "async value");
    assert.equal(v, 42);
    t.defer(() => {
      throw new Error("cleanup broke");
    }, "broken cleanup");
  });
  assert.deepEqual(s.lines.map((l) => [l.name, l.status, l.reason]), [
    ["throws", "fail", "RangeError: bad input"],
    ["skips", "skip", "needs a thing"],
    ["async value", "pass", undefined],
    ["cleanup: broken cleanup", "fail", "Error: cleanup broke"],
    ["kernel log has no WARN/BUG/Oops/lockdep splat", "pass", "0 record(s)"],
  ]);
});

Deno.test("scenario: an unmet requirement skips the whole scenario with the reason, no kernel-log claim", async () => {
  const s = await run(() => {
    throw new Error("must not run");
  }, { requires: [{ kernel: "999.1" }] });
  assert.equal(s.status, "skip");
  assert.match(s.reason!, /older than 999\.1/);
  assert.equal(s.lines.length, 0);
  assert.equal(exitCode(totals([{ file: "t", status: "skip", scenarios: [s] }]), true), 125);
});

Deno.test("scenario deadline: the first line after it is the deadline's, the body stops, cleanup runs", async () => {
  const order: string[] = [];
  const s = await run(async (t) => {
    t.defer(() => order.push("cleanup"));
    await t.step("in time", () => expectTrue(true, "holds in time"));
    await t.step("too long", () => {
      const end = performance.now() + 30;
      while (performance.now() < end) { /* a guest run the kick stopped would return here */ }
      expectEqual(1, 2, "checked after the deadline");
    });
    order.push("not reached");
    await t.step("later", () => expectTrue(true, "not run"));
  }, { timeoutMs: 10 });
  assert.deepEqual(order, ["cleanup"]);
  assert.deepEqual(s.lines.map((l) => [l.name, l.status, l.reason]), [
    ["holds in time", "pass", undefined],
    ["checked after the deadline", "fail", "deadline exceeded (scenario budget 10 ms); got 1, expected 2"],
    ["kernel log has no WARN/BUG/Oops/lockdep splat", "pass", "0 record(s)"],
  ]);
  assert.equal(s.status, "fail");
});
