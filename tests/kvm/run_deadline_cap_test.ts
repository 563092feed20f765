/**
 * A run's own `timeoutMs` never outlasts the deadline it runs under (the scenario's, or an explicit
 * `deadline`): whichever comes first stops it, named as what it was (`timeout` or `deadline`). A
 * scenario's budget is a hard bound (`--timeout` for `git bisect run`), also for a guest whose
 * watchdog is set far above what it needs.
 */

import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { kvmTest } from "../kvm_env.ts";
import { Kvm } from "../../mod.ts";
import { runGuest } from "../../kvm/run_guest.ts";
import { nowMs, runVcpu, setScenarioDeadline } from "../../kvm/run_loop.ts";

const SPIN = { asm: "1: jmp 1b", mode: "long" } as const;

kvmTest("the scenario deadline stops a run whose own timeout is later (stop: deadline)", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  setScenarioDeadline(nowMs() + 200);
  try {
    const r = runGuest(vm, { ...SPIN, timeoutMs: 5000 });
    eq(r.stop, "deadline");
    eq(r.exit.name, "INTR");
    ok(r.elapsedMs < 2000, `stopped after ${r.elapsedMs.toFixed(1)} ms (the deadline was 200 ms away)`);
  } finally {
    setScenarioDeadline(undefined);
  }
});

kvmTest("a run's own timeout earlier than the scenario deadline stops it (stop: timeout)", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  setScenarioDeadline(nowMs() + 5000);
  try {
    const r = runGuest(vm, { ...SPIN, timeoutMs: 150 });
    eq(r.stop, "timeout");
    ok(r.elapsedMs < 2000, `stopped after ${r.elapsedMs.toFixed(1)} ms`);
  } finally {
    setScenarioDeadline(undefined);
  }
});

kvmTest(
  "an explicit deadline earlier than timeoutMs stops the run (stop: deadline); a later one leaves it the timeout",
  () => {
    using kvm = Kvm.open();
    using vm = kvm.createVm();
    const { vcpu } = runGuest(vm, { ...SPIN, timeoutMs: 50 });
    const early = runVcpu(vcpu, { timeoutMs: 5000, deadline: nowMs() + 150 });
    eq(early.stop, "deadline");
    ok(early.elapsedMs < 2000, `stopped after ${early.elapsedMs.toFixed(1)} ms`);
    const late = runVcpu(vcpu, { timeoutMs: 150, deadline: nowMs() + 5000 });
    eq(late.stop, "timeout");
    ok(late.elapsedMs < 2000, `stopped after ${late.elapsedMs.toFixed(1)} ms`);
  },
);
