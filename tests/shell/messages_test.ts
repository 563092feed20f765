/**
 * How the shell words things: caps values once, errors as plain messages (no JS class names),
 * multi-line errors indented under the error line, VM types and attribute names as typed,
 * `--json` command names the same on success and failure, one-line JSON everywhere, stops named
 * by their exit, one default vCPU for regs/run/step, history outside a terminal, caps headings,
 * and hints for the refusals a user meets first. Where KVM has no guest_memfd, the guest_memfd
 * lines are checked as what that host answers (caps 0, the create's ENOTTY and why).
 * @module
 */

import assert from "node:assert/strict";
import { GMEM_MMAP_SKIP_REASON, GMEM_SKIP_REASON, kvmTest } from "../kvm_env.ts";
import { kvmsh, runC, runStdin } from "./helpers.ts";

const VM = "vm create";
const G = "gmem create --size 2M --flags mmap,init-shared";

kvmTest("caps NAME prints the value once, then its meaning", async () => {
  const r = await runC(["caps GUEST_MEMFD_FLAGS"]);
  if (GMEM_MMAP_SKIP_REASON === undefined) {
    assert.match(r.stdout, /^KVM_CAP_GUEST_MEMFD_FLAGS \(244\): system \d+, vm (\d+) \(mmap\|init-shared\)$/m);
  } else if (GMEM_SKIP_REASON !== undefined) {
    // No guest_memfd: 0, and its meaning, none.
    assert.match(r.stdout, /^KVM_CAP_GUEST_MEMFD_FLAGS \(244\): system 0, vm 0 \(none\)$/m);
  } else assert.match(r.stdout, /^KVM_CAP_GUEST_MEMFD_FLAGS \(244\): system \d+, vm (\d+) \([a-z|-]+\)$/m);
  assert.doesNotMatch(r.stdout, /vm (\d+) \1 /);
  // Every host: a cap that is not about guest_memfd, its value once, then its meaning (VM type names).
  const t = await runC(["caps VM_TYPES"]);
  assert.match(t.stdout, /^KVM_CAP_VM_TYPES \(235\): system \d+, vm (\d+) \([\w|-]+\)$/m);
  assert.doesNotMatch(t.stdout, /vm (\d+) \1 /);
  if (GMEM_SKIP_REASON !== undefined) {
    const g = await runC(["caps GUEST_MEMFD"]);
    assert.match(g.stdout, /^KVM_CAP_GUEST_MEMFD \(234\): system 0, vm 0 \(no guest_memfd: [^)]*ENOTTY\)$/m);
  }
});

kvmTest("caps groups have headings", async () => {
  const r = await runC(["caps"]);
  assert.match(r.stdout, /^key capabilities \(guest_memfd, memory attributes, …\):\nKVM_CAP_/m);
  assert.match(r.stdout, /^other capabilities this host answers non-zero:\nKVM_CAP_/m);
});

kvmTest("errors are plain messages: no JS class names, no 'os error N'", async () => {
  const dir = await Deno.makeTempDir();
  const gmem = GMEM_MMAP_SKIP_REASON === undefined;
  const lines = [
    VM,
    `source ${dir}`,
    `source ${dir}/missing`,
    `run ${dir}`,
    `record start ${dir}/missing/x.ts`,
    "x/4xb 0x12345000",
    G,
    // Where KVM cannot make G's guest_memfd, G is refused (its warning goes apart) and nothing is left to bind or close.
    ...(gmem ? ["slot set 1 --gpa 4G --size 2M --gmem gmem0", "gmem close gmem0"] : []),
  ];
  const r = await runC(lines, ["--keep-going"]);
  const warnings = r.stderr.trim().split("\n").filter((l) => l.startsWith("warning: "));
  const errs = r.stderr.trim().split("\n").filter((l) => !l.startsWith("warning: "));
  assert.equal(warnings.length, gmem ? 0 : 1, r.stderr);
  assert.equal(errs.length, 6, r.stderr);
  for (const e of errs) {
    assert.match(e, /^error: /);
    assert.doesNotMatch(e, /^error: [A-Z][A-Za-z]*(Error)?: |os error \d+|Error: /, e);
  }
  assert.match(errs[0], new RegExp(`^error: source: cannot read '${dir}': is a directory$`));
  assert.match(errs[1], new RegExp(`^error: source: cannot read '${dir}/missing': no such file or directory$`));
  assert.match(errs[2], new RegExp(`^error: run: cannot read '${dir}': is a directory$`));
  assert.match(errs[3], /^error: record start: cannot create '.*\/missing\/x\.ts': no such file or directory$/);
  assert.match(errs[4], /^error: no memslot covers GPA 0x12345000/);
  if (gmem) assert.match(errs[5], /^error: gmem0 backs slot 1 of vm0/);
  else assert.match(errs[5], /^error: KVM_CREATE_GUEST_MEMFD: E[A-Z]+ \(/);
  if (GMEM_SKIP_REASON !== undefined) {
    assert.deepEqual(warnings, [
      "warning: KVM_CAP_GUEST_MEMFD=0 on vm0 (default VM): this kernel has no guest_memfd; sending anyway",
    ]);
    assert.equal(
      errs[5],
      "error: KVM_CREATE_GUEST_MEMFD: ENOTTY (Inappropriate ioctl for device) [size=0x200000 flags=mmap|init-shared] " +
        "— this kernel has no guest_memfd (KVM_CAP_GUEST_MEMFD=0)",
    );
  }
  await Deno.remove(dir, { recursive: true });
});

kvmTest("assembler errors: each line of as's answer indented under the error line", async () => {
  const r = await runC([VM, 'run --asm "bogus; mov"']);
  assert.equal(r.code, 1);
  assert.doesNotMatch(r.stderr, /\\n/);
  const lines = r.stderr.trimEnd().split("\n");
  assert.match(lines[0], /^error: as failed/);
  assert.ok(lines.length >= 3, r.stderr);
  for (const l of lines.slice(1)) assert.match(l, /^ {2}\S/, l);
  assert.ok(lines.some((l) => /no such instruction: `bogus'/.test(l)), r.stderr);
});

kvmTest("vm create --type 99: the refused type is shown as typed", async () => {
  const r = await runC(["vm create --type 99"]);
  assert.match(r.stderr, /\[type=99\]/);
  assert.doesNotMatch(r.stderr, /type=type/);
});

kvmTest("--json: a failure names the command as success does; attr show names attributes", async () => {
  const r = await runC([
    "vm create --json --type 99",
    "vm create --json",
    "vm create --json --bogus",
    "gmem frob --json",
    "frob --json",
    "attr set private 0 4K --json",
    "attr show --json",
  ], ["--keep-going"]);
  const o = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(o.map((x) => [x.command, x.ok]), [
    ["vm create", false],
    ["vm create", true],
    ["vm create", false],
    ["gmem frob", false],
    ["frob", false],
    ["attr set", false],
    ["attr show", true],
  ]);
  assert.deepEqual(o[6].result.log.map((x: { attributes: string }) => x.attributes), ["private"]);
});

kvmTest("kvmsh caps --json is one line, like every other --json output", async () => {
  const r = await kvmsh(["caps", "--json"]);
  assert.equal(r.stdout.trimEnd().split("\n").length, 1);
  assert.equal(JSON.parse(r.stdout).apiVersion, 12);
});

kvmTest("stop names the exit: HLT, SHUTDOWN … not 'exit'", async () => {
  const r = await runC([VM, "run scripts/guests/bin/hello16.bin --mode real", 'run --asm "ud2"'], ["--keep-going"]);
  const both = `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
  assert.match(r.stdout, /^stop: HLT; last exit HLT/m, both);
  assert.match(r.stdout, /^stop: (SHUTDOWN|INTERNAL_ERROR); last exit /m, both);
  assert.doesNotMatch(r.stdout, /^stop: exit;/m, both);
});

kvmTest("regs, run, step default to the same vCPU: the VM's first, or the one the last run used", async () => {
  const r = await runC([
    VM,
    "vcpu create",
    "vcpu create",
    "regs set rax=0x11",
    'run --asm "hlt"',
    "regs",
    "run --asm hlt --vcpu vcpu1",
    "regs",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const regs = r.stdout.split("\n").filter((l) => /^vcpu\d:$/.test(l));
  // regs set went to vcpu0 (the first), so did run, then regs; after a run on vcpu1, regs shows vcpu1.
  assert.deepEqual(regs, ["vcpu0:", "vcpu0:", "vcpu1:"]);
});

kvmTest("history outside a terminal lists the commands run in this session", async () => {
  const piped = await runStdin(["echo a", "echo b", "history"]);
  assert.match(piped.stdout, /^ +1 +echo a\n +2 +echo b\n +3 +history$/m);
  const c = await kvmsh(["-c", "echo a", "-c", "echo b; history"]); // each -c string is a line
  assert.match(c.stdout, /^ +1 +echo a\n +2 +echo b; history$/m);
  const j = await runStdin(["echo a", "history --json"]);
  assert.deepEqual(JSON.parse(j.stdout.trim().split("\n").at(-1)!).result.history, ["echo a", "history --json"]);
});

kvmTest(
  "hints: gmem read/write/pread/pwrite/truncate refusals, vcpu create --id 99999, slot del of no slot",
  async () => {
    // The guest_memfd refusals only where KVM makes an mmap,init-shared guest_memfd; the others everywhere.
    const gmem = GMEM_MMAP_SKIP_REASON === undefined;
    const r = await runC([
      VM,
      ...(gmem
        ? [
          G,
          "gmem read gmem0 16",
          "gmem write gmem0 1",
          "gmem pread gmem0 0 16",
          "gmem pwrite gmem0 0 1",
          "gmem truncate gmem0 4M",
        ]
        : []),
      "vcpu create --id 99999",
      "slot del 77",
    ], ["--keep-going"]);
    const all = r.stderr.trim().split("\n");
    assert.equal(all.length, gmem ? 7 : 2, r.stderr);
    const errs = gmem ? all : [...Array(5).fill(""), ...all];
    if (gmem) {
      assert.match(errs[0], /read: EINVAL .* — guest_memfd has no read\/write: reach its memory through mmap/);
      assert.match(errs[1], /write: EINVAL .* — guest_memfd has no read\/write/);
      assert.match(errs[2], /pread: E[A-Z]+ .* — guest_memfd has no pread\/pwrite/);
      assert.match(errs[3], /pwrite: E[A-Z]+ .* — guest_memfd has no pread\/pwrite/);
      assert.match(errs[4], /ftruncate: EINVAL .* — a guest_memfd's size is fixed when it is created/);
    }
    assert.match(errs[5], /KVM_CREATE_VCPU: EINVAL .* — the vCPU id must be below KVM_CAP_MAX_VCPU_ID/);
    assert.match(errs[6], /KVM_SET_USER_MEMORY_REGION2: EINVAL .*slot=77.* — there is no memslot 77 to delete/);
    assert.doesNotMatch(errs[6], /alignment/);
  },
);

kvmTest("$KVMSH_DEVICE names the device the shell opens, as for scenarios", async () => {
  const missing = await kvmsh(["-c", "vm create"], undefined, { KVMSH_DEVICE: "/nonexistent/kvm" });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^error: open: ENOENT .*\[path=\/nonexistent\/kvm\] — no \/nonexistent\/kvm: /m);
  const real = await kvmsh(["-c", "vm create"], undefined, { KVMSH_DEVICE: "/dev/kvm" });
  assert.equal(real.code, 0, real.stderr);
});
