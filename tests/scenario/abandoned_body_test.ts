/**
 * A body abandoned at its deadline may wake up while its cleanup still runs: what it records then
 * (a claim, a note) is not reported (ScenarioContext.abandon: "later records from the abandoned
 * body are not reported"); the cleanup's own lines still are. No KVM needed.
 */

import { deepStrictEqual as eq } from "node:assert/strict";
import { defer, expectTrue, FakeKernelLog, note } from "../../mod.ts";
import { runScenario } from "../../scenario/runner.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("a body abandoned at its deadline that wakes up during cleanup adds no line and no note", async () => {
  const r = await runScenario({
    name: "late body",
    options: { timeoutMs: 100 },
    fn: async () => {
      defer(() => sleep(600), "slow cleanup");
      defer(() => note("cleanup note"), "noting cleanup");
      await sleep(300);
      note("late note from the abandoned body");
      expectTrue(true, "late pass from the abandoned body");
    },
  }, new FakeKernelLog());
  eq(r.lines.map((l) => [l.name, l.status]), [
    ["scenario body", "fail"],
    ["kernel log has no WARN/BUG/Oops/lockdep splat", "pass"],
  ]);
  eq(r.lines[0].reason, "deadline exceeded (scenario budget 100 ms); the body was still waiting");
  eq(r.lines.flatMap((l) => l.diag), ["cleanup note"]);
  eq(r.status, "fail");
});
