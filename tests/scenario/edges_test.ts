/**
 * Scenario edges found in review: a skipped scenario makes no kernel-log claim (also not the ones
 * it expected); a body abandoned inside an xfail block leaves no xfail mark behind; an unnamed
 * errno given as text is compared as the kernel's name for it; a misspelt exit reason is refused;
 * a file run directly runs the scenarios declared after a top-level await.
 */

import assert from "node:assert/strict";
import { FakeKernelLog } from "../../kvm/kmsg.ts";
import { KvmError } from "../../kvm/errors.ts";
import { runEntries } from "../../scenario/runner.ts";
import { runGuest } from "../../kvm/run_guest.ts";
import { kvmTest } from "../kvm_env.ts";
import type { ScenarioEntry } from "../../scenario/registry.ts";
import { expectErrno, expectExit, expectGuestResult, expectTrue } from "../../scenario/expect.ts";
import { requires } from "../../scenario/requires.ts";

const run = (fn: ScenarioEntry["fn"], options: ScenarioEntry["options"] = {}, log = new FakeKernelLog()) =>
  runEntries("t", [{ name: "s", fn, options }], log).then((f) => f.scenarios[0]);

Deno.test("scenario: a skipped scenario records no expected kernel-log line (no fail)", async () => {
  const s = await run((t) => {
    t.expectKernelLog(/WARNING: .* kvm_gmem/, "kernel warns in kvm_gmem");
    requires({ kernel: "999.1" });
  });
  assert.equal(s.status, "skip");
  assert.deepEqual(s.lines, [], "no line: neither the expected record nor the splat claim");
  // Not skipped, the same expectation fails when the record is missing (the check still works).
  const f = await run((t) => t.expectKernelLog(/WARNING: .* kvm_gmem/, "kernel warns in kvm_gmem"));
  assert.deepEqual(f.lines.map((l) => [l.name, l.status]), [
    ["kernel warns in kvm_gmem", "fail"],
    ["kernel log has no WARN/BUG/Oops/lockdep splat", "pass"],
  ]);
});

Deno.test("scenario: a body abandoned in an async xfail block leaves no xfail mark on later lines", async () => {
  const s = await run(async (t) => {
    await t.xfail("known", () => new Promise(() => {}));
  }, { timeoutMs: 50 });
  const klog = s.lines.find((l) => l.name.startsWith("kernel log has no"));
  assert.equal(klog?.status, "pass", JSON.stringify(s.lines)); // not XPASS: the mark ended with the body
});

Deno.test("xfail: an XFAIL ends its block, not the step: a real failure after it is still reported", async () => {
  for (const async of [false, true]) {
    const s = await run(async (t) => {
      await t.step("s", async () => {
        const block = () => {
          expectTrue(false, "a");
          expectTrue(false, "b (not reached: the block ended at a)");
        };
        const r = async
          ? await t.xfail("host differs", async () => {
            await Promise.resolve();
            block();
          })
          : t.xfail("host differs", block);
        assert.equal(r, undefined);
        expectTrue(true, "after the block");
        expectTrue(false, "a real failure after the block");
      });
    });
    assert.deepEqual(
      s.lines.filter((l) => !l.name.startsWith("kernel log")).map((l) => [l.name, l.status]),
      [
        ["a", "xfail"],
        ["after the block", "pass"],
        ["a real failure after the block", "fail"],
      ],
      `${async ? "async" : "sync"} block`,
    );
    assert.equal(s.status, "fail");
  }
});

kvmTest("expectExit: an MMIO write's value is compared (it was compared with IO data only)", async () => {
  const s = await run((t) => {
    const vm = t.vm();
    const r = runGuest(vm, { asm: "movw $0x1234, 0x40000000; hlt", mode: "long", timeoutMs: 5000 });
    expectExit({ reason: "MMIO", addr: 0x40000000n, write: true, value: 0x1234 }, () => r, "the value");
    expectExit({ reason: "MMIO", value: [0x34, 0x12] }, () => r, "its bytes");
    expectExit({ reason: "MMIO", value: 0x1235 }, () => r, "another value");
  });
  assert.deepEqual(s.lines.slice(0, 3).map((l) => [l.name, l.status]), [
    ["the value", "pass"],
    ["its bytes", "pass"],
    ["another value", "fail"],
  ]);
});

Deno.test("expectErrno: an errno given as an unnamed number's text is compared as the kernel's name (E#200)", async () => {
  const s = await run(() => {
    expectErrno("200", () => {
      throw new KvmError({ syscall: "ioctl", errno: 200, args: {} });
    }, "unnamed errno");
  });
  assert.equal(s.lines[0].status, "pass", JSON.stringify(s.lines[0]));
});

Deno.test("expectExit / expectGuestResult: a misspelt exit reason is a RangeError, not a mismatch forever", () => {
  assert.throws(() => expectExit("HALT", () => undefined), /unknown exit reason 'HALT'/);
  assert.throws(() => expectGuestResult({ stop: "exit" } as never, { exit: "MEMORYFAULT" }), /unknown exit reason/);
});

Deno.test("a scenario file run directly runs the scenarios after a top-level await", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const mod = new URL("../../mod.ts", import.meta.url).href;
    const file = `${dir}/tla.ts`;
    await Deno.writeTextFile(
      file,
      `import { expectTrue, scenario } from "${mod}";\n` +
        `scenario("before", () => expectTrue(true, "first holds"));\n` +
        `await new Promise((r) => setTimeout(r, 50));\n` +
        `scenario("after", () => expectTrue(false, "second fails"));\n`,
    );
    const o = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "--allow-all", file],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(o.stdout);
    assert.match(out, /not ok 2 after/, out);
    assert.equal(o.code, 1, out);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
