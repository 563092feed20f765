/**
 * The kernel log as evidence: record parsing, splat detection, a scenario fed a fake WARN line
 * fails (and passes when it expects it), a quiet one passes; and the real /dev/kmsg reader sees a
 * line written during a scenario and nothing from before it.
 */

import assert from "node:assert/strict";
import { FakeKernelLog, formatKmsg, KmsgReader, parseKmsgRecord, splatKind } from "../../kvm/kmsg.ts";
import { runEntries } from "../../scenario/runner.ts";
import type { ScenarioEntry } from "../../scenario/registry.ts";
import { expectTrue } from "../../scenario/expect.ts";
import { cstr, libc, O } from "../../ffi/libc.ts";

function entry(name: string, fn: ScenarioEntry["fn"]): ScenarioEntry {
  return { name, fn, options: {} };
}

Deno.test("kmsg: parses prio,seq,usec,flags;text and dictionary lines", () => {
  const r = parseKmsgRecord("4,1234,5678901,-;kvm: something odd\\x0a happened\n SUBSYSTEM=misc\n DEVICE=c10:232\n")!;
  assert.equal(r.level, 4);
  assert.equal(r.facility, 0);
  assert.equal(r.seq, 1234);
  assert.equal(r.usec, 5678901);
  assert.equal(r.text, "kvm: something odd\n happened");
  assert.deepEqual(r.dict, ["SUBSYSTEM=misc", "DEVICE=c10:232"]);
  assert.equal(formatKmsg(r), "[    5.678901] kvm: something odd\n happened");
  assert.equal(parseKmsgRecord("not a record"), undefined);
  assert.equal(parseKmsgRecord("12,3,4,c;user line")!.facility, 1);
});

Deno.test("kmsg: splats are recognised, ordinary lines are not", () => {
  const cases: [string, string | undefined][] = [
    ["WARNING: CPU: 1 PID: 42 at arch/x86/kvm/mmu/mmu.c:123 kvm_mmu_x+0x1/0x2 [kvm]", "WARN"],
    ["BUG: kernel NULL pointer dereference, address: 0000000000000008", "BUG"],
    ["kernel BUG at mm/filemap.c:1500!", "BUG"],
    ["Oops: 0002 [#1] PREEMPT SMP NOPTI", "Oops"],
    ["WARNING: possible circular locking dependency detected", "WARN"],
    ["other info that might help us debug this: possible circular locking", "lockdep"],
    ["general protection fault, probably for non-canonical address 0xdead", "GPF"],
    ["Call Trace:", "Call Trace"],
    ["UBSAN: shift-out-of-bounds in arch/x86/kvm/x86.c:1", "sanitizer"],
    ["kvm: vcpu 0 disabled perfctr wrmsr", undefined],
    ["kvm_pvm: loaded", undefined],
  ];
  for (const [line, kind] of cases) assert.equal(splatKind(line), kind, line);
});

Deno.test("kmsg: a scenario that triggers nothing in the kernel log passes", async () => {
  const log = new FakeKernelLog();
  log.push("6,1,1,-;printed before the scenario started");
  const f = await runEntries("t", [entry("quiet", () => expectTrue(true, "holds"))], log);
  const s = f.scenarios[0];
  assert.equal(s.status, "pass");
  assert.equal(s.kmsg.length, 0, "start() drops what came before");
  assert.equal(s.lines.at(-1)!.status, "pass");
  assert.match(s.lines.at(-1)!.name, /kernel log has no WARN/);
});

Deno.test("kmsg: a scenario during which the kernel prints a WARN fails, with the line as the reason", async () => {
  const log = new FakeKernelLog();
  const f = await runEntries("t", [
    entry("warns", () => {
      expectTrue(true, "the scenario's own claim holds");
      log.push("4,77,1000,-;WARNING: CPU: 0 PID: 1 at arch/x86/kvm/x86.c:42 kvm_arch_vcpu_ioctl_run+0x1/0x2");
      log.push("4,78,1001,-;Call Trace:");
      log.push("6,79,1002,-;an ordinary line");
    }),
  ], log);
  const s = f.scenarios[0];
  assert.equal(s.status, "fail");
  assert.equal(f.status, "fail");
  assert.equal(s.kmsg.length, 3, "every record printed during the scenario is attached");
  const last = s.lines.at(-1)!;
  assert.equal(last.status, "fail");
  assert.match(last.reason!, /^WARN: WARNING: CPU: 0 PID: 1 at arch\/x86\/kvm\/x86\.c:42 .* \(\+1 more\)$/);
});

Deno.test("kmsg: a WARN the scenario expects does not fail it; an expected line that never comes does", async () => {
  const log = new FakeKernelLog();
  const f = await runEntries("t", [
    entry("expects", (t) => {
      t.expectKernelLog(/WARNING: .*kvm_gmem/, "kernel warns in kvm_gmem");
      log.push("WARNING: CPU: 0 PID: 1 at virt/kvm/guest_memfd.c:10 kvm_gmem_bind+0x1/0x2");
    }),
    entry("waits in vain", (t) => {
      t.expectKernelLog(/never printed/);
    }),
  ], log);
  assert.equal(f.scenarios[0].status, "pass");
  assert.deepEqual(f.scenarios[0].lines.map((l) => l.status), ["pass", "pass"]);
  assert.equal(f.scenarios[1].status, "fail");
  assert.match(f.scenarios[1].lines[0].reason!, /no such kernel log record/);
});

function kmsgWritable(): boolean {
  const fd = libc().open(cstr("/dev/kmsg"), O.WRONLY | O.CLOEXEC, 0);
  if (fd < 0) return false;
  libc().close(fd);
  return true;
}

Deno.test({
  name: "kmsg: the real /dev/kmsg reader attaches a line printed during the scenario, not one from before",
  ignore: !kmsgWritable(),
  fn: async () => {
    const tag = `kvmsh-scenario-test-${crypto.randomUUID()}`;
    const say = (text: string) => {
      const fd = libc().open(cstr("/dev/kmsg"), O.WRONLY | O.CLOEXEC, 0);
      const b = new TextEncoder().encode(`<6>${text}\n`); // without the newline the record stays open (not finalized)
      libc().write(fd, b, BigInt(b.length));
      libc().close(fd);
    };
    say(`${tag} before`);
    const log = new KmsgReader();
    try {
      assert.equal(log.unavailable, undefined);
      const f = await runEntries("t", [entry("prints", () => say(`${tag} during`))], log);
      const mine = f.scenarios[0].kmsg.filter((r) => r.text.includes(tag)).map((r) => r.text);
      assert.deepEqual(mine, [`${tag} during`]);
      assert.equal(f.scenarios[0].status, "pass");
    } finally {
      log.close();
    }
  },
});
