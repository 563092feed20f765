/**
 * expectGuestResult: one line per field of a guest run (stop, last exit, console, exit code,
 * ucalls), the actual value when one differs, the step ended after all of them are shown.
 * Real guests on /dev/kvm (a library ucall guest, an inline one writing 0xE9 and 0xF4).
 */

import assert from "node:assert/strict";
import { kvmTest } from "../kvm_env.ts";
import { FakeKernelLog } from "../../kvm/kmsg.ts";
import { runEntries } from "../../scenario/runner.ts";
import type { ScenarioEntry } from "../../scenario/registry.ts";
import { expectGuestResult, expectTrue, guestPath, runGuest } from "../../mod.ts";

const run = (fn: ScenarioEntry["fn"]) =>
  runEntries("t", [{ name: "s", fn, options: {} }], new FakeKernelLog()).then((f) => f.scenarios[0]);

const EXIT_CODE_GUEST = `
  mov $0xe9, %dx
  mov $0x41, %al
  out %al, (%dx)
  mov $0xf4, %dx
  mov $3, %al
  out %al, (%dx)
  hlt
`;

kvmTest("expectGuestResult: stop, last exit, console, ucalls and exit code each hold, one line each", async () => {
  const s = await run(async (t) => {
    await t.step("ucall guest", () => {
      const r = expectGuestResult(() => runGuest(t.vm(), { elf: guestPath("ucall_demo") }), {
        stop: "done",
        exit: "IO",
        console: "hello from a ucall\n",
        exitCode: null,
        ucalls: [
          { cmd: "print", message: "hello from a ucall\n" },
          { cmd: "sync", args: [1] },
          { cmd: "sync", args: [2n] },
          { cmd: "done" },
        ],
      }, "ucall_demo");
      assert.equal(r.ucalls.length, 4, "returns the result");
    });
    await t.step("exit code guest", () => {
      const r = runGuest(t.vm(), { asm: EXIT_CODE_GUEST });
      expectGuestResult(r, { stop: "exit-code", console: /^A$/, exitCode: { value: 3, status: 7 }, ucalls: [] });
    });
  });
  assert.deepEqual(s.lines.map((l) => [l.name, l.status]), [
    ["ucall_demo: stop is done", "pass"],
    ["ucall_demo: last exit is IO", "pass"],
    ['ucall_demo: console is "hello from a ucall\\n"', "pass"],
    ["ucall_demo: exit code is none", "pass"],
    ['ucall_demo: ucalls are print "hello from a ucall\\n", sync(0x1), sync(0x2), done', "pass"],
    ["guest run: stop is exit-code", "pass"],
    ["guest run: console matches /^A$/", "pass"],
    ["guest run: exit code is 0x3", "pass"],
    ["guest run: ucalls are none", "pass"],
    ["kernel log has no WARN/BUG/Oops/lockdep splat", "pass"],
  ]);
});

kvmTest("expectGuestResult: every differing field fails with what the guest did, then the step ends", async () => {
  const s = await run(async (t) => {
    await t.step("wrong on purpose", () => {
      expectGuestResult(() => runGuest(t.vm(), { asm: EXIT_CODE_GUEST }), {
        stop: "exit-code",
        exit: "HLT",
        console: "B",
        exitCode: 4,
        ucalls: [{ cmd: "done" }],
      });
      expectTrue(true, "not reached");
    });
    await t.step("no exit code", () => {
      expectGuestResult(() => runGuest(t.vm(), { asm: "hlt" }), { exitCode: 3 });
    });
    await t.step("the run throws", () => {
      expectGuestResult(() => {
        throw new RangeError("no such guest");
      }, { stop: "done" });
    });
  });
  const got = s.lines.map((l) => [l.name, l.status, l.reason]);
  assert.deepEqual(got.slice(0, 5), [
    ["guest run: stop is exit-code", "pass", undefined],
    ["guest run: last exit is HLT", "fail", got[1][2]],
    ['guest run: console is "B"', "fail", 'got "A"'],
    ["guest run: exit code is 0x4", "fail", "got 0x3 (status 7), expected 0x4"],
    ["guest run: ucalls are done", "fail", "0 ucall(s), expected 1: got [none]"],
  ]);
  assert.match(String(got[1][2]), /^got IO /);
  assert.ok(!got.some((l) => l[0] === "not reached"), "the step ended after the failed fields");
  assert.deepEqual(got[5], [
    "guest run: exit code is 0x3",
    "fail",
    "no exit code (the guest never wrote port 0xf4), expected 0x3",
  ]);
  assert.deepEqual(got[6], ["guest run", "fail", "the run failed: RangeError: no such guest"]);
  assert.equal(s.status, "fail");
});
