/**
 * Issue 3's guest_memfd walk through the real shell, and `--json` (one object per command,
 * bigints as hex strings, errors as KvmError.toJSON()). Where KVM has no guest_memfd the walk is
 * skipped (with the reason) and what the user meets instead is checked; `--json` and `source`
 * are checked over anonymous memory on every host.
 * @module
 */

import assert from "node:assert/strict";
import { GMEM_SKIP_REASON, gmemTest, kvmTest, noGmemTest } from "../kvm_env.ts";
import { kvmsh, runStdin } from "./helpers.ts";

gmemTest("shell walk: the guest_memfd ABI at the prompt", async () => {
  const r = await runStdin([
    "vm create",
    "gmem create --size 2M --flags mmap,init-shared",
    "write gmem0:0 fill:0xaa:4K",
    "x/8xb gmem0:0",
    "gmem punch gmem0 0 4K",
    "x/8xb gmem0:0",
    "gmem create --size 2M --flags mmap",
    "x/8xb gmem1:0",
    "echo alive after the fault",
    "slot set 1 --gpa 4G --size 2M --gmem gmem0",
    "x/8xb 4G",
    "attr set private 4G 2M",
  ], ["--keep-going"]);
  const out = r.stdout;
  assert.match(out, /gmem0:0x0: 0xaa 0xaa 0xaa 0xaa 0xaa 0xaa 0xaa 0xaa\n/);
  assert.match(out, /gmem0: punched 0x0\+0x1000 \(4 KiB\)\ngmem0:0x0: 0x00 0x00 0x00 0x00 0x00 0x00 0x00 0x00\n/);
  assert.match(r.stderr, /error: EFAULT: would SIGBUS — process_vm_readv: EFAULT .*source=gmem1/);
  assert.match(out, /alive after the fault/);
  assert.match(out, /slot 1 on vm0: gpa 0x100000000 size 0x200000 \(2 MiB\)/);
  assert.match(out, /vm0 gpa 0x100000000: 0x00 0x00/);
  assert.match(
    r.stderr,
    /KVM_SET_MEMORY_ATTRIBUTES: ENOTTY \(Inappropriate ioctl for device\).*KVM_CAP_MEMORY_ATTRIBUTES=0/,
  );
  assert.equal(r.code, 1);
}, "mmap,init-shared");

noGmemTest(
  "shell walk without guest_memfd: gmem create says why; the names it would make are refused; memory by GPA works",
  async () => {
    const r = await runStdin([
      "vm create",
      "gmem create --size 2M --flags mmap,init-shared",
      "x/8xb gmem0:0",
      "slot set 1 --gpa 4G --size 2M --gmem gmem0",
      "echo alive after the refusals",
      "slot set 1 --gpa 4G --size 2M --anon",
      "write 4G fill:0xaa:4K",
      "x/8xb 4G",
      "attr set private 4G 2M",
    ], ["--keep-going"]);
    assert.deepEqual(r.stderr.trim().split("\n").slice(0, 4), [
      "warning: KVM_CAP_GUEST_MEMFD=0 on vm0 (default VM): this kernel has no guest_memfd; sending anyway",
      "error: KVM_CREATE_GUEST_MEMFD: ENOTTY (Inappropriate ioctl for device) [size=0x200000 flags=mmap|init-shared] " +
      "— this kernel has no guest_memfd (KVM_CAP_GUEST_MEMFD=0)",
      "error: no object 'gmem0' (use a GPA like 0x100000000, gmemN:offset or mapN:offset)",
      "error: no guest_memfd 'gmem0' (none open)",
    ]);
    assert.match(r.stdout, /alive after the refusals/);
    assert.match(r.stdout, /^slot 1 on vm0: gpa 0x100000000 size 0x200000 \(2 MiB\) flags none userspace anon/m);
    assert.match(r.stdout, /^vm0 gpa 0x100000000: 0xaa 0xaa 0xaa 0xaa 0xaa 0xaa 0xaa 0xaa$/m);
    assert.match(
      r.stderr,
      /KVM_SET_MEMORY_ATTRIBUTES: ENOTTY \(Inappropriate ioctl for device\).*KVM_CAP_MEMORY_ATTRIBUTES=0/,
    );
    assert.equal(r.code, 1, "--keep-going: the last failure's status (attr set's ENOTTY)");
  },
);

gmemTest("shell --json: one JSON object per command, hex bigints, KvmError.toJSON()", async () => {
  const r = await kvmsh([
    "--json",
    "--keep-going",
    "-c",
    "vm create; gmem create --size 2M --flags mmap; x/4xb gmem0:0; frob; gmem stat gmem0",
  ]);
  const objs = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(objs.length, 5);
  assert.deepEqual(objs.map((o) => o.ok), [true, true, false, false, true]);
  assert.equal(objs[1].result.size, "0x200000");
  assert.equal(objs[2].error.errnoName, "EFAULT");
  assert.equal(objs[2].error.op, "process_vm_readv");
  assert.equal(objs[3].error.error, "UsageError");
  assert.equal(objs[4].result.stat.size, "0x200000");
  assert.equal(r.stderr, "");
  // Per-command --json.
  const one = await kvmsh(["-c", "vm create --json; vm list"]);
  assert.equal(JSON.parse(one.stdout.split("\n")[0]).result.name, "vm0");
  assert.match(one.stdout.split("\n")[1], /name/);
  // One-shot caps --json keeps its pretty report.
  const caps = await kvmsh(["caps", "--json", "GUEST_MEMFD_FLAGS"]);
  assert.equal(JSON.parse(caps.stdout).apiVersion, 12);
}, "mmap");

kvmTest("shell --json over anonymous memory: one JSON object per command, hex bigints, KvmError.toJSON()", async () => {
  const r = await kvmsh([
    "--json",
    "--keep-going",
    "-c",
    "vm create; slot set 1 --gpa 4G --size 2M --anon; x/4xb 4G; x/4xb 8G; frob; vcpu create --id 99999; slot list",
  ]);
  const objs = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(objs.length, 7);
  assert.deepEqual(objs.map((o) => o.ok), [true, true, true, false, false, false, true]);
  assert.equal(objs[1].result.size, "0x200000");
  assert.equal(objs[1].result.gpa, "0x100000000");
  assert.equal(objs[2].result.bytes, "00000000");
  assert.deepEqual(objs[3].error, { error: "RangeError", message: "no memslot covers GPA 0x200000000" });
  assert.equal(objs[4].error.error, "UsageError");
  assert.equal(objs[5].error.error, "KvmError");
  assert.equal(objs[5].error.errnoName, "EINVAL");
  assert.equal(objs[5].error.op, "KVM_CREATE_VCPU");
  assert.deepEqual(objs[5].error.args, { id: 99999 });
  assert.equal(objs[6].result.memslots[0].size, "0x200000");
  assert.equal(r.stderr, "");
  // Per-command --json.
  const one = await kvmsh(["-c", "vm create --json; vm list"]);
  assert.equal(JSON.parse(one.stdout.split("\n")[0]).result.name, "vm0");
  assert.match(one.stdout.split("\n")[1], /name/);
  // One-shot caps --json keeps its pretty report.
  const caps = await kvmsh(["caps", "--json", "GUEST_MEMFD_FLAGS"]);
  assert.equal(JSON.parse(caps.stdout).apiVersion, 12);
});

noGmemTest("shell --json without guest_memfd: gmem create's warning and its KvmError.toJSON()", async () => {
  const r = await kvmsh(["--json", "--keep-going", "-c", "vm create; gmem create --size 2M --flags mmap; gmem list"]);
  const objs = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(objs.map((o) => [o.command, o.ok]), [["vm create", true], ["gmem create", false], [
    "gmem list",
    true,
  ]]);
  assert.deepEqual(objs[1].warnings, [
    "warning: KVM_CAP_GUEST_MEMFD=0 on vm0 (default VM): this kernel has no guest_memfd; sending anyway",
  ]);
  assert.deepEqual(objs[1].error, {
    error: "KvmError",
    message: "KVM_CREATE_GUEST_MEMFD: ENOTTY (Inappropriate ioctl for device) [size=0x200000 flags=mmap] " +
      "— this kernel has no guest_memfd (KVM_CAP_GUEST_MEMFD=0)",
    syscall: "ioctl",
    op: "KVM_CREATE_GUEST_MEMFD",
    errno: 25,
    errnoName: "ENOTTY",
    strerror: "Inappropriate ioctl for device",
    args: { size: "0x200000", flags: "mmap" },
    hint: "this kernel has no guest_memfd (KVM_CAP_GUEST_MEMFD=0)",
  });
  assert.deepEqual(objs[2].result.gmems, []);
  assert.equal(r.stderr, "", "with --json the warning is in the object, not on stderr");
  assert.equal(r.code, 1);
});

kvmTest("shell output: no colour without a terminal or with NO_COLOR", async () => {
  const r = await kvmsh(["-c", "help; frob"], undefined, { NO_COLOR: "" });
  assert.ok(!(r.stdout + r.stderr).includes("\u001b["), "an escape sequence was printed");
});

kvmTest("shell source: runs a file and stops at its first failure", async () => {
  const dir = await Deno.makeTempDir();
  // Line 3 makes an object (a guest_memfd where KVM has them, else a vCPU): the lines before the failure ran.
  const gmem = GMEM_SKIP_REASON === undefined;
  await Deno.writeTextFile(
    `${dir}/s.kvmsh`,
    `vm create\n# a comment\n${gmem ? "gmem create --size 4K" : "vcpu create"}\nfrob\necho not reached\n`,
  );
  const r = await kvmsh(["-c", `source ${dir}/s.kvmsh; echo after`]);
  assert.match(r.stdout, gmem ? /gmem0: fd/ : /vcpu0: id 0, fd/);
  assert.doesNotMatch(r.stdout, /not reached|after/);
  assert.match(r.stderr, /unknown command 'frob'[^]*source .*stopped at line 4/);
  assert.equal(r.code, 2, "the failing line's status (a usage error)");
  await Deno.remove(dir, { recursive: true });
});
