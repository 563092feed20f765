/**
 * One name per object: the shell shows the API's own names (one counter per kind across the Kvm),
 * so a kernel error's args, `slot list`, `gmem list` and the REPL's lines name the same object; the
 * guest_memfd and slots `run` makes for itself are listed as made by run and take no user's name.
 * And a plain `run` after `run --memory gmem:…` runs in anonymous memory. The guest_memfd cases
 * are skipped (with the reason) where KVM has no guest_memfd; the same naming is checked there
 * on vCPUs and on the memory `run` makes without one.
 * @module
 */

import assert from "node:assert/strict";
import { GMEM_MMAP_SKIP_REASON, GMEM_SKIP_REASON, gmemTest, kvmTest } from "../kvm_env.ts";
import { runC } from "./helpers.ts";

gmemTest("names: gmem1 of the second VM is gmem1 in errors, x/, slot list (the QA repro)", async () => {
  const r = await runC([
    "vm create",
    "gmem create --size 2M --flags mmap",
    "vm create",
    "gmem create --size 2M --flags mmap",
    "gmem read gmem1 16",
    "x/4xb gmem1:0",
    "slot set 1 --gpa 4G --size 2M --gmem gmem1",
    "slot list",
  ], ["-k"]);
  assert.match(r.stdout, /^gmem1: fd \d+, size 0x200000 \(2 MiB\), flags mmap, vm vm1$/m);
  assert.match(r.stderr, /read: EINVAL .*\[gmem=gmem1 length=16\]/);
  assert.match(r.stderr, /\[source=gmem1 offset=0x0 length=0x4/);
  assert.doesNotMatch(r.stdout + r.stderr, /gmem0(?!: fd)/, "gmem0 (vm0's) appears only where it was made");
  assert.match(r.stdout, /^1 +0x100000000 +0x200000 \(2 MiB\) +guest-memfd +gmem1 \S+ +gmem1\+0x0$/m);
}, "mmap");

kvmTest(
  "names: vcpu1 of the second VM is vcpu1 in vm list, regs, errors (one counter per kind, as for gmem)",
  async () => {
    const r = await runC([
      "vm create",
      "vcpu create",
      "vm create",
      "vcpu create",
      "regs",
      "regs vcpu1",
      "vm list --json",
      "vm close vm1",
      "sregs vcpu0",
      "regs vcpu1",
    ], ["-k"]);
    assert.match(
      r.stdout,
      /^vcpu1: id 0, fd \d+, kvm_run 0x[0-9a-f]+ bytes, vm vm1$/m,
      "vm1's first vCPU is vcpu1 (id 0)",
    );
    // regs on vm1 (its default vCPU, then by name) shows vcpu1, not a second vcpu0.
    assert.deepEqual(r.stdout.split("\n").filter((l) => /^vcpu\d+:$/.test(l)), ["vcpu1:", "vcpu1:"]);
    const list = JSON.parse(r.stdout.split("\n").find((l) => l.startsWith("{"))!);
    assert.deepEqual(list.result.vms.map((v: { name: string; vcpus: string[] }) => [v.name, v.vcpus]), [
      ["vm0", ["vcpu0"]],
      ["vm1", ["vcpu1"]],
    ]);
    assert.match(r.stdout, /^vcpu0: cr0 /m, "vm0's vCPU is still vcpu0 after vm1 closed");
    assert.equal(r.stderr, "error: vcpu1 is closed\n");
  },
);

gmemTest(
  "names: run's own guest_memfd and slots are listed as made by run; the next gmem create takes the next name",
  async () => {
    const r = await runC([
      "vm create",
      "gmem create --size 2M --flags mmap",
      'run "hlt" --asm --memory gmem:mmap,init-shared',
      "gmem list",
      "slot list",
      "gmem create --size 2M --flags mmap",
      "gmem mmap gmem2",
      "vcpu create",
      "gmem list --json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^gmem1 \(run\) +vm0 +\d+ +0x400000 \(4 MiB\) +mmap\|init-shared +1 +slot0$/m);
    assert.match(r.stdout, /^0 \(run\) +0x0 +0x400000 \(4 MiB\) +guest-memfd +gmem1 \S+ +gmem1\+0x0$/m);
    assert.match(r.stdout, /^gmem2: fd \d+, size 0x200000/m, "no collision with run's gmem1");
    assert.match(
      r.stdout,
      /^map0: 0x[0-9a-f]+ size 0x200000 \(2 MiB\) of gmem2/m,
      "run's implicit mapping takes no name",
    );
    assert.match(r.stdout, /^vcpu1: id 1, /m, "run made vcpu0");
    const list = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
    assert.deepEqual(list.result.gmems.map((g: { name: string; madeBy?: string }) => [g.name, g.madeBy ?? null]), [
      ["gmem0", null],
      ["gmem1", "run"],
      ["gmem2", null],
    ]);
  },
  "mmap,init-shared",
);

kvmTest(
  "names: run's own anonymous slots and vCPU are listed as made by run; the next vcpu create takes the next name",
  async () => {
    const r = await runC([
      "vm create",
      'run "hlt" --asm',
      "slot list",
      "vcpu create",
      "slot list --json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^0 \(run\) +0x0 +0x400000 \(4 MiB\) +none +anon \S+ +-$/m);
    assert.match(r.stdout, /^vcpu1: id 1, /m, "run made vcpu0");
    const list = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
    assert.ok(list.result.memslots.length > 0, r.stdout);
    for (const s of list.result.memslots) assert.equal(s.madeBy, "run", JSON.stringify(s));
  },
);

kvmTest(
  "run: no --memory means anonymous memory, also after a run --memory gmem:… (run's gmem slot replaced)",
  async () => {
    const gmem = GMEM_MMAP_SKIP_REASON === undefined;
    const r = await runC([
      "vm create",
      'run "hlt" --asm --memory gmem:mmap,init-shared',
      'run "hlt" --asm',
      "gmem list",
      "slot list",
    ], gmem ? [] : ["-k"]);
    if (gmem) assert.equal(r.code, 0, r.stderr);
    else {
      // KVM cannot make the guest_memfd: the gmem run is refused (no guest_memfd at all: ENOTTY, with why) and
      // runs nothing; the plain run runs.
      assert.match(r.stderr, /^error: KVM_CREATE_GUEST_MEMFD: E[A-Z]+ .*\[size=0x400000 flags=mmap\|init-shared\]/m);
      if (GMEM_SKIP_REASON !== undefined) {
        assert.equal(
          r.stderr,
          "warning: KVM_CAP_GUEST_MEMFD=0 on vm0 (default VM): this kernel has no guest_memfd; sending anyway\n" +
            "error: KVM_CREATE_GUEST_MEMFD: ENOTTY (Inappropriate ioctl for device) [size=0x400000 flags=mmap|init-shared] " +
            "— this kernel has no guest_memfd (KVM_CAP_GUEST_MEMFD=0)\n",
        );
      }
      assert.equal(r.stdout.match(/^stop: HLT; /gm)?.length, 1, r.stdout);
      assert.equal(r.code, 1, "-k: the gmem run's failure status stays");
    }
    assert.match(r.stdout, /no guest_memfds/, "run's gmem went with its slot");
    assert.match(r.stdout, /^0 \(run\) +0x0 +0x400000 \(4 MiB\) +none +anon \S+ +-$/m);
    const help = await runC(["help run"]);
    assert.match(help.stdout, /--memory MEM: main memory: anon \(the default: no --memory is anon/);
  },
);
