/**
 * Several VMs and vCPUs at once, as a user drives them: which object an error names, the default
 * vCPU id, caps numbers past what the API can send. Runs on any KVM host (no guest_memfd needed).
 * @module
 */

import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { Kvm, KvmError } from "../../mod.ts";
import { kvmTest } from "../kvm_env.ts";
import { runC } from "./helpers.ts";

kvmTest("a vCPU's kernel error names the vCPU (vcpu1), with its id, not 'vcpu=0' (another object's name)", async () => {
  // vcpu1 is vm1's vCPU id 0; vm1 has no memslot, so KVM_RUN fails (the errno is the kernel's).
  const r = await runC(["vm create", "vcpu create", "vm create", "vcpu create", "step --vcpu vcpu1"]);
  eq(r.code, 1, r.stderr);
  const err = r.stderr.split("\n").find((l) => l.startsWith("error: KVM_RUN"));
  ok(err, r.stderr);
  ok(err.includes("[vcpu=vcpu1 id=0]"), err);
  ok(!/vcpu=0\b/.test(err), err);
  const j = await runC(["vm create", "vcpu create", "vm create", "vcpu create", "regs vcpu1", "step --vcpu vcpu1"], [
    "--json",
  ]);
  const last = JSON.parse(j.stdout.trim().split("\n").at(-1)!);
  eq(last.ok, false);
  eq(last.error.args.vcpu, "vcpu1");
  eq(last.error.args.id, 0);
});

kvmTest("API: a vCPU's KvmError carries its name and id", () => {
  using kvm = Kvm.open();
  using vm0 = kvm.createVm();
  using vm1 = kvm.createVm();
  vm0.createVcpu();
  const c = vm1.createVcpu();
  try {
    c.run();
    ok(false, "KVM_RUN without memory succeeded");
  } catch (e) {
    ok(e instanceof KvmError, String(e));
    eq(e.args.vcpu, c.name);
    eq(e.args.id, 0);
    ok(e.message.includes(`[vcpu=${c.name} id=0]`), e.message);
  }
});

kvmTest("caps with a number past 2^53: a usage error (exit 2) naming it, not a JS TypeError", async () => {
  for (const n of ["99999999999999999999", "9007199254740993", "0xffffffffffffffff"]) {
    const r = await runC([`caps ${n}`]);
    eq(r.code, 2, r.stderr);
    eq(r.stdout, "");
    ok(r.stderr.includes(`capability number '${n}' is larger than 9007199254740991`), r.stderr);
    ok(!/TypeError|internal error|\n\s+at /.test(r.stderr), r.stderr);
  }
  const max = await runC(["caps 9007199254740991"]);
  eq(max.code, 0, max.stderr);
  ok(max.stdout.startsWith("KVM_CAP_#9007199254740991 (9007199254740991): system 0, vm 0"), max.stdout);
});

kvmTest("vcpu create without --id takes one more than the highest id so far, as help says", async () => {
  const r = await runC(["vm create", "vcpu create --id 3", "vcpu create --id 1", "vcpu create", "help vcpu create"]);
  eq(r.code, 0, r.stderr);
  ok(r.stdout.includes("vcpu2: id 4,"), r.stdout);
  ok(r.stdout.includes("--id N: vCPU id (default: one more than the highest id created on this VM)"), r.stdout);
});

kvmTest("run --json names the vCPU it ran, as step and continue do (the default one, or one run made)", async () => {
  const r = await runC([
    "vm create",
    "vcpu create",
    "vcpu create",
    "run --asm hlt --vcpu vcpu1",
    "run --asm hlt",
    "vm create",
    'run --asm "hlt; hlt"',
    "continue",
  ], ["--json"]);
  eq(r.code, 0, r.stderr);
  const out = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  eq(out.map((o) => [o.command, o.result.vcpu]).filter(([c]) => c === "run" || c === "continue"), [
    ["run", "vcpu1"],
    ["run", "vcpu1"], // the one the last run used
    ["run", "vcpu2"], // made by run on vm1
    ["continue", "vcpu2"],
  ]);
});
