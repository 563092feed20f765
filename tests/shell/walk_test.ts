/**
 * Issue 3's guest_memfd walk through the real shell, and `--json` (one object per command,
 * bigints as hex strings, errors as KvmError.toJSON()).
 * @module
 */

import assert from "node:assert/strict";
import { kvmTest } from "../kvm_env.ts";
import { kvmsh, runStdin } from "./helpers.ts";

kvmTest("shell walk: the guest_memfd ABI at the prompt", async () => {
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
});

kvmTest("shell --json: one JSON object per command, hex bigints, KvmError.toJSON()", async () => {
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
});

kvmTest("shell output: no colour without a terminal or with NO_COLOR", async () => {
  const r = await kvmsh(["-c", "help; frob"], undefined, { NO_COLOR: "" });
  assert.ok(!(r.stdout + r.stderr).includes("\u001b["), "an escape sequence was printed");
});

kvmTest("shell source: runs a file and stops at its first failure", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/s.kvmsh`, "vm create\n# a comment\ngmem create --size 4K\nfrob\necho not reached\n");
  const r = await kvmsh(["-c", `source ${dir}/s.kvmsh; echo after`]);
  assert.match(r.stdout, /gmem0: fd/);
  assert.doesNotMatch(r.stdout, /not reached|after/);
  assert.match(r.stderr, /unknown command 'frob'[^]*source .*stopped at line 4/);
  assert.equal(r.code, 2, "the failing line's status (a usage error)");
  await Deno.remove(dir, { recursive: true });
});
