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

Deno.test("kmsg: splats are recognised by the kind the kernel prints", () => {
  // Lines as the kernel's printk formats produce them (lib/bug.c, arch/*/traps.c, mm/kasan, mm/kfence,
  // lib/ubsan.c, kernel/locking/lockdep.c, kernel/rcu/tree_stall.h, kernel/hung_task.c, kernel/watchdog.c).
  const cases: [string, string][] = [
    ["WARNING: CPU: 1 PID: 42 at arch/x86/kvm/mmu/mmu.c:123 kvm_mmu_x+0x1/0x2 [kvm]", "WARN"],
    ["WARNING: arch/x86/kvm/x86.c:11234 at kvm_arch_vcpu_ioctl_run+0x5a/0x7c0 [kvm], CPU#0: qemu/1234", "WARN"],
    ["BUG: kernel NULL pointer dereference, address: 0000000000000008", "BUG"],
    ["BUG: unable to handle page fault for address: ffffc90000a3c000", "BUG"],
    ["kernel BUG at mm/filemap.c:1500!", "BUG"],
    ["kernel BUG at virt/kvm/guest_memfd.c:77 [verbose debug info unavailable]", "BUG"],
    ["BUG: workqueue lockup - pool cpus=0 node=0 flags=0x0 nice=0 stuck for 33s!", "BUG"],
    ["Oops: 0002 [#1] PREEMPT SMP NOPTI", "Oops"],
    [
      "Oops: general protection fault, probably for non-canonical address 0xdffffc0000000001: 0000 [#1] SMP KASAN",
      "Oops",
    ],
    ["Oops[#1]:", "Oops"],
    ["Internal error: Oops: 0000000096000005 [#1] PREEMPT SMP", "Oops"],
    ["Internal error: Oops - BUG: 00000000f2000800 [#2] SMP", "Oops"],
    ["Unable to handle kernel NULL pointer dereference at virtual address 0000000000000010", "Oops"],
    ["Unable to handle kernel paging request at virtual address ffff800081234000", "Oops"],
    ["general protection fault: 0000 [#1] SMP PTI", "GPF"],
    ["WARNING: possible circular locking dependency detected", "lockdep"],
    ["WARNING: possible recursive locking detected", "lockdep"],
    ["WARNING: inconsistent lock state", "lockdep"],
    ["WARNING: suspicious RCU usage", "lockdep"],
    ["BUG: sleeping function called from invalid context at mm/slab.h:123", "sleep in atomic"],
    ["BUG: scheduling while atomic: qemu/1234/0x00000002", "sleep in atomic"],
    ["UBSAN: shift-out-of-bounds in arch/x86/kvm/x86.c:1", "UBSAN"],
    ["UBSAN: array-index-out-of-bounds in arch/x86/kvm/lapic.c:99:12", "UBSAN"],
    ["BUG: KASAN: slab-use-after-free in kvm_gmem_release+0x1/0x2 [kvm]", "KASAN"],
    ["BUG: KFENCE: out-of-bounds read in kvm_vcpu_ioctl+0x1/0x2", "KFENCE"],
    ["BUG: KMSAN: uninit-value in kvm_arch_vcpu_ioctl+0x1/0x2", "KMSAN"],
    ["rcu: INFO: rcu_sched detected stalls on CPUs/tasks:", "RCU stall"],
    ["rcu: INFO: rcu_preempt self-detected stall on CPU", "RCU stall"],
    ["INFO: rcu_sched detected stalls on CPUs/tasks: { 1} (detected by 0, t=21002 jiffies)", "RCU stall"],
    ["INFO: rcu_tasks detected stalls on tasks:", "RCU stall"],
    ["INFO: task qemu-system-x86:1234 blocked for more than 122 seconds.", "hung task"],
    ["watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [kvm-vcpu:777]", "soft lockup"],
    ["watchdog: CPU1: Watchdog detected hard LOCKUP on cpu 2", "hard lockup"],
    ["Call Trace:", "Call Trace"],
    ["Kernel panic - not syncing: Fatal exception", "panic"],
    ["[   12.345678] Oops: 0000 [#1] SMP", "Oops"],
  ];
  for (const [line, kind] of cases) assert.equal(splatKind(line), kind, line);
});

Deno.test("kmsg: near misses are ordinary lines", () => {
  const ordinary = [
    "kvm: vcpu 0 disabled perfctr wrmsr",
    "kvm_pvm: loaded",
    "oops, I did it again: tty0 buffer full", // the word, not the kernel's Oops line
    "usb 1-1: device descriptor read/64, error -71 (Oops handler not involved)",
    "systemd[1]: Oops: this unit has no condition", // a process's text, after its own prefix
    "EXT4-fs (sda1): mounted filesystem; no Oops here",
    "traps: a.out[4321] general protection fault ip:401136 sp:7ffd error:0 in a.out[401000+1000]",
    "my-test: WARNING: this is not the kernel's WARN", // text with a prefix of its own
    "Bluetooth: hci0: BUG: firmware says so", // a driver's string, not lib/bug.c
    "audit: type=1400 msg=debug info: task blocked for more than usual",
    "INFO: task list printed on request", // hung_task's INFO needs "blocked for more than N seconds"
    "rcu: Hierarchical RCU implementation.",
    "random: crng init done",
    "virtio_net virtio0 eth0: WARNING ignored",
    "kasan: KernelAddressSanitizer initialized", // KASAN booting is not a KASAN report
    "ubsan: built-in", // same
    "Unable to handle kernel module signature", // made-up prefix that is not arm's page-fault line
  ];
  for (const line of ordinary) assert.equal(splatKind(line), undefined, line);
});

Deno.test("kmsg: a splat-looking record a process wrote (user facility) does not fail the scenario", async () => {
  const log = new FakeKernelLog();
  const f = await runEntries("t", [
    entry("user text", () => {
      expectTrue(true, "holds");
      log.push("12,80,1000,-;WARNING: CPU: 0 PID: 1 at somewhere"); // facility 1 (user), level 4
      log.push("14,81,1001,-;Oops: 0002 [#1] SMP"); // facility 1 (user), level 6
    }),
  ], log);
  assert.equal(f.scenarios[0].status, "pass");
  assert.equal(f.scenarios[0].kmsg.length, 2, "the records are still attached as evidence");
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
