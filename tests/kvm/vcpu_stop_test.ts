/** Stopping guests: timeout, scenario deadline and Ctrl-C kick the vCPU; the VM runs again after. */

import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { kvmTest } from "../kvm_env.ts";
import { Kvm } from "../../mod.ts";
import { runGuest } from "../../kvm/run_guest.ts";
import { nowMs, runVcpu, setScenarioDeadline } from "../../kvm/run_loop.ts";
import { interruptChild } from "./sigint_child_runner.ts";

kvmTest("jmp $ under a 1 s timeout stops with INTR (EINTR), then the same VM and vCPU run again", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const r = runGuest(vm, { asm: "1: jmp 1b", timeoutMs: 1000 });
  eq(r.stop, "timeout");
  eq(r.exit.name, "INTR");
  eq(r.exit.errno, "EINTR");
  ok(r.elapsedMs >= 1000 && r.elapsedMs < 1500, `stopped after ${r.elapsedMs.toFixed(1)} ms`);
  eq(r.vcpu.exit.immediateExit, 0, "immediate_exit cleared after the stop");
  const again = runGuest(vm, { asm: "mov $9, %al; out %al, $0xf4", timeoutMs: 5000 });
  eq(again.vcpu, r.vcpu);
  eq(again.exitCode?.value, 9);
  // And the interrupted vCPU can simply continue too.
  const spin = runGuest(vm, { asm: "1: jmp 1b", timeoutMs: 100 });
  eq(spin.stop, "timeout");
  eq(runVcpu(spin.vcpu, { timeoutMs: 100 }).stop, "timeout");
});

kvmTest("a guest that exits all the time (IO loop) is stopped by the timeout too", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const r = runGuest(vm, {
    asm: "1: out %al, $0x80; jmp 1b",
    timeoutMs: 300,
    handlers: { ports: { 0x80: () => "continue" } },
  });
  eq(r.stop, "timeout");
  ok(r.exits > 10, `${r.exits} exits`);
  ok(r.elapsedMs < 800, `${r.elapsedMs.toFixed(1)} ms`);
});

kvmTest("the scenario deadline stops a run without its own timeout (stop: deadline)", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  setScenarioDeadline(nowMs() + 200);
  try {
    const r = runGuest(vm, { asm: "1: jmp 1b" });
    eq(r.stop, "deadline");
    eq(r.exit.name, "INTR");
  } finally {
    setScenarioDeadline(undefined);
  }
});

kvmTest("Ctrl-C (SIGINT to the process) stops a guest blocked in KVM_RUN; the VM runs again", async () => {
  // 500 ms: the guest is spinning by then.
  const r = await interruptChild(new URL("./vcpu_sigint_child.ts", import.meta.url), 500);
  eq(r.code, 0, r.stderr);
  ok(r.msAfterSigint < 5000);
  eq(r.result.first.stop, "interrupt");
  eq(r.result.first.exit, "INTR");
  eq(r.result.again, { value: 3, status: 7 });
});

kvmTest("runs start no Worker (no thread): a deadline is a per-thread timer, Ctrl-C a signal handler", async () => {
  // Threads are counted in a child process that does only the runs: in this shared test process
  // Deno's own runtime threads come and go (a thread count here was flaky).
  const o = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "--allow-all", new URL("./vcpu_threads_child.ts", import.meta.url).pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(o.stderr);
  eq(o.code, 0, err);
  const r = JSON.parse(new TextDecoder().decode(o.stdout));
  eq([r.short, r.spin, r.quiet], ["exit", "timeout", "exit"]);
  eq(r.threadsAfter, r.threadsBefore, "a run started a thread");
  eq(r.watchdogRunning, false);
  eq(r.after.workerStarts, 0);
  eq(r.after.runs - r.before.runs, 2);
  eq(r.after.timers - r.before.timers, 2, "one deadline timer per run with a timeout");
  eq(r.after.sigintRuns - r.before.sigintRuns, 2, "both runs had the Ctrl-C handler");
  eq(r.after.kicks - r.before.kicks, 1, "only the spinning run was stopped from outside");
  eq(r.last.runs, r.after.runs, "a run with no deadline that Ctrl-C may not stop arms nothing");
});
