/**
 * Record → replay: a session through every command kind is recorded, the file replays as a
 * scenario with the same kernel answers (each read checked byte for byte, each refusal by
 * errno); and an injection test: quotes, backticks, `${}`, newlines and `*\/` typed at the
 * prompt end up as data, never as code.
 *
 * Each test over guest_memfd memory has a twin over anonymous memory (a `slot set --anon`, or
 * the memory `run` makes), which runs on every host: the guest_memfd one is skipped, with the
 * reason, where KVM has no guest_memfd. There a `gmem create` (or `run --memory gmem:…`) is
 * recorded as what the kernel answered, `expectErrno("ENOTTY", …)`: the replay checks this
 * kernel still refuses, and fails on a kernel that makes the guest_memfd.
 * @module
 */

import assert from "node:assert/strict";
import { GMEM_SKIP_REASON, gmemTest, kvmTest } from "../kvm_env.ts";
import { kvmsh, ROOT } from "./helpers.ts";

async function replay(file: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const o = await new Deno.Command(`${ROOT}deno`, {
    args: ["run", "-A", file],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const d = new TextDecoder();
  return { code: o.code, stdout: d.decode(o.stdout), stderr: d.decode(o.stderr) };
}

gmemTest("record → replay: every command kind, same kernel answers", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/session.ts`;
  const session = [
    "vm create",
    `record start ${file}`,
    "caps GUEST_MEMFD_FLAGS MEMORY_ATTRIBUTES",
    "vm create",
    "use vm0",
    "gmem create --size 2M --flags mmap,init-shared",
    "gmem create --size 1",
    "gmem create --size 2M --flags mmap",
    "write gmem0:0 fill:0xaa:8K",
    "write gmem0:0x100 0xde 0xad str:hi",
    "x/16xb gmem0:0xf8",
    "gmem punch gmem0 0 4K",
    "x/4xg gmem0:0",
    "gmem alloc gmem0 0 8K",
    "gmem alloc gmem0 0 8K --no-keep-size",
    "gmem stat gmem0",
    "gmem mmap gmem0 --offset 4K --length 4K",
    "gmem mmap gmem1 --private",
    "x/8xb map0:0",
    "x/16xb gmem1:0",
    "touch gmem1:0",
    "touch gmem0:0x1000",
    "gmem read gmem0 8",
    "gmem write gmem0 1",
    "gmem pread gmem0 0 8",
    "gmem pwrite gmem0 0 1",
    "gmem truncate gmem0 4M",
    "slot set 1 --gpa 4G --size 2M --gmem gmem0",
    "slot set 2 --gpa 8G --size 2M --gmem gmem0",
    "slot set 3 --gpa 0 --size 1M --anon",
    "write 0x100000000 0x11 0x22",
    "x/2xb 4G",
    "x/4xb 0x1234000",
    "attr set private 4G 2M",
    "attr set shared 4G 2M",
    "slot del 3",
    "vcpu create",
    "regs set rax=0x1234 rbx=5",
    "regs",
    "sregs",
    "gmem close gmem1",
    "vm close vm1",
    "reset",
    "vm create",
    "run scripts/guests/bin/hello16.bin --mode real",
    "record stop",
  ];
  const live = await kvmsh(["--keep-going"], session.join("\n") + "\n");
  assert.equal(live.code, 1, "the session has refusals");
  assert.match(live.stdout, /recorded \d+ commands/);
  const text = await Deno.readTextFile(file);
  // Each kind appears as an API call.
  for (
    const call of [
      "kvm.checkExtension(",
      "kvm.createVm(",
      "createGuestMemfd(",
      'kvmsh.expectErrno("EINVAL", () => vm0.createGuestMemfd(0x1n, 0n))',
      ".fillMem(",
      ".writeMem(",
      "kvmsh.expectBytes(",
      ".punchHole(",
      ".allocate(",
      'kvmsh.expectErrno("EOPNOTSUPP"',
      ".stat()",
      ".mmap(",
      'kvmsh.expectErrno("EFAULT", () => gmem1.readMem(',
      ".touchInChild(",
      ".read(8)",
      ".pread(",
      ".pwrite(",
      ".truncate(",
      ".addMemslot(",
      ".writeGuest(",
      ".readGuest(",
      'await expectThrows("RangeError"',
      'kvmsh.expectErrno("ENOTTY", () => vm0.setPrivate(',
      ".setShared(",
      ".deleteMemslot(3)",
      ".createVcpu(",
      ".setRegs({ rax: 0x1234n, rbx: 0x5n })",
      ".getSregs()",
      "gmem1.close()",
      "vm1.close()",
      "kvm.vms.forEach(",
      "kvmsh.runGuest(vm2,",
      'kvmsh.expectGuestResult(r, { stop: "exit", exit: "HLT", console: "Hello, world!\\nserial ok\\n", exitCode: null, ucalls: [] }',
    ]
  ) assert.ok(text.includes(call), `recording lacks ${call}\n${text}`);
  const r = await replay(file);
  assert.equal(r.code, 0, `replay failed:\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /# Totals: pass:\d+ fail:0/);
  assert.doesNotMatch(r.stdout, /^\s*not ok/m);
  await Deno.remove(dir, { recursive: true });
}, "mmap,init-shared");

kvmTest(
  "record → replay: every command kind over anonymous memory, same kernel answers (a refused gmem create is recorded as its errno)",
  async () => {
    const dir = await Deno.makeTempDir();
    const file = `${dir}/session.ts`;
    // Where KVM has no guest_memfd, the guest_memfd commands this kernel refuses are in the session too.
    const noGmem = GMEM_SKIP_REASON !== undefined;
    const session = [
      "vm create",
      `record start ${file}`,
      "caps GUEST_MEMFD_FLAGS MEMORY_ATTRIBUTES",
      "vm create",
      "use vm0",
      ...(noGmem ? ["gmem create --size 2M --flags mmap,init-shared", "gmem create --size 1"] : []),
      "slot set 1 --gpa 4G --size 2M --anon",
      "slot set 2 --gpa 8G --size 2M --userspace none",
      "slot set 3 --gpa 0 --size 1M --anon --flags readonly",
      "write 4G fill:0xaa:8K",
      "write 0x100000100 0xde 0xad str:hi",
      "x/16xb 0x1000000f8",
      "x/4xg 4G",
      "x/2xb 8G",
      "x/4xb 0x1234000",
      "attr set private 4G 2M",
      "attr set shared 4G 2M",
      "slot del 3",
      "slot list",
      "vcpu create",
      "regs set rax=0x1234 rbx=5",
      "regs",
      "sregs",
      "vm close vm1",
      "reset",
      "vm create",
      "run scripts/guests/bin/hello16.bin --mode real",
      ...(noGmem ? ["run --asm hlt --memory gmem:mmap,init-shared"] : []),
      "record stop",
    ];
    const live = await kvmsh(["--keep-going"], session.join("\n") + "\n");
    assert.equal(live.code, 1, `the session has refusals, and no usage error: ${live.stderr}`);
    assert.match(live.stdout, /recorded \d+ commands/);
    const text = await Deno.readTextFile(file);
    // Each kind appears as an API call.
    for (
      const call of [
        "kvm.checkExtension(244)",
        "kvm.createVm(",
        'vm0.addMemslot({ slot: 1, gpa: 0x100000000n, size: 0x200000n, flags: 0x0n, userspace: "anon" })',
        'vm0.addMemslot({ slot: 2, gpa: 0x200000000n, size: 0x200000n, flags: 0x0n, userspace: "none" })',
        'vm0.addMemslot({ slot: 3, gpa: 0x0n, size: 0x100000n, flags: 0x2n, userspace: "anon" })',
        "vm0.writeGuest(0x100000000n, new Uint8Array(8192).fill(170))",
        "vm0.writeGuest(0x100000100n, new Uint8Array([222, 173, 104, 105]))",
        'kvmsh.expectBytes(r, unhex("aaaaaaaaaaaaaaaadead6869aaaaaaaa"), "vm0.readGuest(0x1000000f8n, 16)")',
        "vm0.readGuest(0x100000000n, 32)",
        'await expectThrows("RangeError", () => vm0.readGuest(0x200000000n, 2)',
        'await expectThrows("RangeError", () => vm0.readGuest(0x1234000n, 4)',
        "vm0.setPrivate(0x100000000n, 0x200000n)",
        "vm0.setShared(0x100000000n, 0x200000n)",
        "vm0.deleteMemslot(3)",
        ".createVcpu(",
        ".setRegs({ rax: 0x1234n, rbx: 0x5n })",
        ".getRegs()",
        ".getSregs()",
        "vm1.close()",
        "kvm.vms.forEach(",
        "kvmsh.runGuest(vm2,",
        'kvmsh.expectGuestResult(r, { stop: "exit", exit: "HLT", console: "Hello, world!\\nserial ok\\n", exitCode: null, ucalls: [] }',
        // A kernel without guest_memfd: its answer, ENOTTY, is what the recording checks.
        ...(noGmem
          ? [
            'kvmsh.expectErrno("ENOTTY", () => vm0.createGuestMemfd(0x200000n, "mmap|init-shared"));',
            'kvmsh.expectErrno("ENOTTY", () => vm0.createGuestMemfd(0x1n, 0n));',
            'kvmsh.expectErrno("ENOTTY", () => kvmsh.runGuest(vm2, { asm: "hlt", timeoutMs: 5000, memory: "gmem:mmap,init-shared"',
          ]
          : []),
      ]
    ) assert.ok(text.includes(call), `recording lacks ${call}\n${text}`);
    const r = await replay(file);
    assert.equal(r.code, 0, `replay failed:\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /# Totals: pass:\d+ fail:0/);
    assert.doesNotMatch(r.stdout, /^\s*not ok/m);
    assert.match(r.stdout, /^\s*ok \d+ vm0\.readGuest\(0x1000000f8n, 16\)$/m);
    if (noGmem) {
      assert.match(r.stdout, /^\s*ok \d+ vm0\.createGuestMemfd\(0x200000n, "mmap\|init-shared"\) fails with ENOTTY$/m);
    }
    await Deno.remove(dir, { recursive: true });
  },
);

gmemTest("record → replay fails when the kernel's answer differs (the checks can fail)", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/s.ts`;
  await kvmsh([
    "-c",
    `vm create; gmem create --size 2M --flags mmap,init-shared; record start ${file}; write gmem0:0 0x5a; x/1xb gmem0:0; record stop`,
  ]);
  // Simulate another kernel: the recorded byte becomes a different one.
  const text = (await Deno.readTextFile(file)).replace('unhex("5a")', 'unhex("5b")');
  await Deno.writeTextFile(file, text);
  const r = await replay(file);
  assert.notEqual(r.code, 0);
  assert.match(r.stdout, /not ok \d+ gmem0\.readMem\(0x0n, 1\)/);
  await Deno.remove(dir, { recursive: true });
}, "mmap,init-shared");

kvmTest(
  "record → replay over anonymous memory fails when the kernel's answer differs (the checks can fail)",
  async () => {
    const dir = await Deno.makeTempDir();
    const file = `${dir}/s.ts`;
    // Where KVM has no guest_memfd, a gmem create is recorded as its refusal: checked as well.
    const noGmem = GMEM_SKIP_REASON !== undefined;
    const live = await kvmsh([
      "--keep-going",
      "-c",
      `vm create; slot set 1 --gpa 0 --size 2M --anon; record start ${file}; write 0 0x5a; x/1xb 0; ${
        noGmem ? "gmem create --size 2M; " : ""
      }record stop`,
    ]);
    assert.equal(live.code, noGmem ? 1 : 0, live.stderr);
    const text = await Deno.readTextFile(file);
    const same = await replay(file);
    assert.equal(same.code, 0, `the untouched recording replays:\n${same.stdout}\n${same.stderr}`);
    // Simulate another kernel: the recorded byte becomes a different one.
    const byte = text.replace('unhex("5a")', 'unhex("5b")');
    assert.notEqual(byte, text);
    await Deno.writeTextFile(file, byte);
    const r = await replay(file);
    assert.notEqual(r.code, 0);
    assert.match(r.stdout, /not ok \d+ vm0\.readGuest\(0x0n, 1\)/);
    if (noGmem) {
      // A kernel that answers the create otherwise (another errno, or a guest_memfd) fails the replay.
      const errno = text.replace(
        'kvmsh.expectErrno("ENOTTY", () => vm0.createGuestMemfd(0x200000n, 0n))',
        'kvmsh.expectErrno("EINVAL", () => vm0.createGuestMemfd(0x200000n, 0n))',
      );
      assert.notEqual(errno, text, text);
      await Deno.writeTextFile(file, errno);
      const e = await replay(file);
      assert.notEqual(e.code, 0);
      assert.match(e.stdout, /not ok \d+ vm0\.createGuestMemfd\(0x200000n, 0n\) fails with EINVAL/);
    }
    await Deno.remove(dir, { recursive: true });
  },
);

gmemTest("record: typed quotes, backticks, ${}, newlines and */ are data, never code", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/inj.ts`;
  const marker = `${dir}/PWNED`;
  const evil = [
    `str:"); Deno.writeTextFileSync(${JSON.stringify(marker)}, "x"); ("`,
    "str:`${Deno.writeTextFileSync(" + JSON.stringify(marker) + ", 'x')}`",
    "str:*/ Deno.exit(7) /*",
    "str:\\n Deno.exit(9) //",
  ];
  const lines = [
    "vm create",
    "gmem create --size 2M --flags mmap,init-shared",
    `record start ${file}`,
    ...evil.map((e) => `write gmem0:0 '${e.replace(/'/g, "'\\''")}'`),
    // A newline inside a quoted word, and injection attempts in names and flags (refused: nothing recorded but a comment).
    'write gmem0:0x80 "str:line1\\nline2 */ `x` ${y}"',
    'gmem stat "gmem0\\"); Deno.exit(3); (\\""',
    "slot set 1 --gpa 4G --size 2M --userspace '\"+Deno.exit(4)+\"'",
    "x/16xb gmem0:0",
    "record stop",
  ];
  const live = await kvmsh(["--keep-going"], lines.join("\n") + "\n");
  assert.match(live.stdout, /recorded \d+ commands/);
  const text = await Deno.readTextFile(file);
  const r = await replay(file);
  assert.equal(r.code, 0, `replay:\n${r.stdout}\n${r.stderr}\n${text}`);
  await assert.rejects(() => Deno.stat(marker), "an injected call ran");
  // The bytes written came back as the same data on replay (checked by the recorded x/).
  assert.match(r.stdout, /ok \d+ gmem0\.readMem\(0x0n, 16\)/);
  // Every user string sits inside a JSON string literal or a // comment.
  for (const l of text.split("\n")) {
    if (l.includes("Deno.exit") || l.includes("writeTextFileSync")) assert.match(l, /^\s*\/\/ kvmsh> "/, l);
  }
  await Deno.remove(dir, { recursive: true });
}, "mmap,init-shared");

kvmTest(
  "record over anonymous memory: typed quotes, backticks, ${}, newlines and */ are data, never code",
  async () => {
    const dir = await Deno.makeTempDir();
    const file = `${dir}/inj.ts`;
    const marker = `${dir}/PWNED`;
    const evil = [
      `str:"); Deno.writeTextFileSync(${JSON.stringify(marker)}, "x"); ("`,
      "str:`${Deno.writeTextFileSync(" + JSON.stringify(marker) + ", 'x')}`",
      "str:*/ Deno.exit(7) /*",
      "str:\\n Deno.exit(9) //",
    ];
    // Assembly text reaches the recording as a string (the run's asm): a comment after `hlt` carries the attempt.
    const asm = `hlt # "); Deno["write" + "TextFileSync"](${JSON.stringify(marker)}, "x"); (" */ \${x} \`y\``;
    const q = (w: string) => `'${w.replace(/'/g, "'\\''")}'`;
    const lines = [
      "vm create",
      "slot set 0 --gpa 0 --size 2M --anon",
      `record start ${file}`,
      ...evil.map((e) => `write 0 ${q(e)}`),
      // A newline inside a quoted word, and injection attempts in names and flags (refused: not recorded).
      'write 0x80 "str:line1\\nline2 */ `x` ${y}"',
      'gmem stat "gmem0\\"); Deno.exit(3); (\\""',
      "slot set 1 --gpa 4G --size 2M --userspace '\"+Deno.exit(4)+\"'",
      "x/16xb 0",
      "vm create",
      `run --asm ${q(asm)} --mode long`,
      "record stop",
    ];
    const live = await kvmsh(["--keep-going"], lines.join("\n") + "\n");
    assert.match(live.stdout, /recorded \d+ commands/);
    const text = await Deno.readTextFile(file);
    assert.ok(text.includes(`asm: ${JSON.stringify(asm)}`), `the asm text is one JSON string:\n${text}`);
    const r = await replay(file);
    assert.equal(r.code, 0, `replay:\n${r.stdout}\n${r.stderr}\n${text}`);
    await assert.rejects(() => Deno.stat(marker), "an injected call ran");
    // The bytes written came back as the same data on replay (checked by the recorded x/).
    assert.match(r.stdout, /ok \d+ vm0\.readGuest\(0x0n, 16\)/);
    assert.match(r.stdout, /ok \d+ kvmsh\.runGuest\(vm1, .*: stop is exit/);
    // Every user string sits inside a JSON string literal or a // comment.
    for (const l of text.split("\n")) {
      if (l.includes("Deno.exit") || l.includes("writeTextFileSync")) assert.match(l, /^\s*\/\/ kvmsh> "/, l);
    }
    await Deno.remove(dir, { recursive: true });
  },
);

kvmTest("record start refuses an existing file unless --force (nothing is overwritten)", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/keep.ts`;
  await Deno.writeTextFile(file, "// precious\n");
  const r = await kvmsh(["-c", `record start ${file}; echo not reached`]);
  assert.equal(r.code, 2, "a usage error");
  assert.match(r.stderr, /^error: record start: '.*keep\.ts' exists; give --force to overwrite it$/m);
  assert.doesNotMatch(r.stdout, /not reached/);
  assert.equal(await Deno.readTextFile(file), "// precious\n");
  const f = await kvmsh(["-c", `vm create; record start --force ${file}; caps GUEST_MEMFD_FLAGS; record stop`]);
  assert.equal(f.code, 0, f.stderr);
  assert.match(await Deno.readTextFile(file), /kvm\.checkExtension\(/);
  await Deno.remove(dir, { recursive: true });
});

kvmTest("record → replay of runs: exit code and ucalls are checked; a tampered exit code or ucall fails", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/runs.ts`;
  const live = await kvmsh([
    "-c",
    [
      `record start ${file}`,
      "vm create",
      "run scripts/guests/bin/ucall_demo.elf",
      "vm create",
      "run --asm 'mov $0x2a, %al; out %al, $0xf4; hlt' --mode real",
      "record stop",
    ].join("; "),
  ]);
  assert.equal(live.code, 0x2a, `the guest's exit code is kvmsh's status: ${live.stderr}`);
  const text = await Deno.readTextFile(file);
  const ucalls = '{ cmd: "print", args: [0x0n, 0x0n, 0x0n, 0x0n], message: "hello from a ucall\\n" }, ' +
    '{ cmd: "sync", args: [0x1n, 0x0n, 0x0n, 0x0n], message: "" }, ' +
    '{ cmd: "sync", args: [0x2n, 0x0n, 0x0n, 0x0n], message: "" }, ' +
    '{ cmd: "done", args: [0x0n, 0x0n, 0x0n, 0x0n], message: "" }';
  for (
    const want of [
      `{ stop: "done", exit: "IO", console: "hello from a ucall\\n", exitCode: null, ucalls: [${ucalls}] }`,
      '{ stop: "exit-code", exit: "IO", console: "", exitCode: { value: 42, status: 85 }, ucalls: [] }',
    ]
  ) assert.ok(text.includes(`kvmsh.expectGuestResult(r, ${want}`), `recording lacks ${want}\n${text}`);
  const ok = await replay(file);
  assert.equal(ok.code, 0, `replay failed:\n${ok.stdout}\n${ok.stderr}`);
  assert.match(ok.stdout, /ok \d+ .*: exit code is 0x2a$/m);
  assert.match(ok.stdout, /ok \d+ .*: ucalls are print\(.*sync\(0x1, .*sync\(0x2, .*done\(/m);
  assert.doesNotMatch(ok.stdout, /^\s*not ok/m);

  // Another kernel (or guest) would have written 0x2b: the replay says so and fails.
  const tampered = `${dir}/exit_code.ts`;
  await Deno.writeTextFile(
    tampered,
    text.replace("exitCode: { value: 42, status: 85 }", "exitCode: { value: 43, status: 87 }"),
  );
  const bad = await replay(tampered);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stdout, /not ok \d+ .*: exit code is 0x2b # got 0x2a \(status 85\), expected 0x2b \(status 87\)/);

  // A ucall that differs (sync(2) recorded as sync(3)) fails too.
  const ucallFile = `${dir}/ucall.ts`;
  await Deno.writeTextFile(ucallFile, text.replace('{ cmd: "sync", args: [0x2n,', '{ cmd: "sync", args: [0x3n,'));
  const badUcall = await replay(ucallFile);
  assert.notEqual(badUcall.code, 0);
  assert.match(badUcall.stdout, /not ok \d+ .*: ucalls are .* # ucall 3 is sync\(0x2, /);
  await Deno.remove(dir, { recursive: true });
});

gmemTest(
  "a large read before `record start` is replayed unchecked (the journal keeps no 8 KiB of hex); one while recording is checked",
  async () => {
    const dir = await Deno.makeTempDir();
    const file = `${dir}/s.ts`;
    const r = await kvmsh([
      "-c",
      [
        "vm create",
        "gmem create --size 2M --flags mmap,init-shared",
        "write gmem0:0 fill:0x5a:16K",
        "x/8192xb gmem0:0",
        "x/16xb gmem0:0",
        `record start ${file}`,
        "x/8192xb gmem0:0x2000",
        "record stop",
      ].join("; "),
    ]);
    assert.equal(r.code, 0, r.stderr);
    const text = await Deno.readTextFile(file);
    const [before, during] = text.split("// --- recording ---");
    assert.ok(during !== undefined, text);
    assert.match(
      before,
      /gmem0\.readMem\(0x0n, 8192\);\n\s*\/\/ \(its 8192 bytes were not kept: a recording checks them\)/,
    );
    assert.match(before, /kvmsh\.expectBytes\(r, unhex\("(5a){16}"\)/, "a small read keeps its check");
    assert.ok(before.length < 4096, `the session before recording is ${before.length} characters`);
    assert.match(
      during,
      new RegExp(`kvmsh\\.expectBytes\\(r, unhex\\("(5a){8192}"\\)`),
      "the recorded read is checked",
    );
    const re = await replay(file);
    assert.equal(re.code, 0, `replay failed:\n${re.stdout}\n${re.stderr}`);
    await Deno.remove(dir, { recursive: true });
  },
  "mmap,init-shared",
);

kvmTest(
  "over anonymous memory: a large read before `record start` is replayed unchecked; one while recording is checked",
  async () => {
    const dir = await Deno.makeTempDir();
    const file = `${dir}/s.ts`;
    const r = await kvmsh([
      "-c",
      [
        "vm create",
        "slot set 1 --gpa 0 --size 2M --anon",
        "write 0 fill:0x5a:16K",
        "x/8192xb 0",
        "x/16xb 0",
        `record start ${file}`,
        "x/8192xb 0x2000",
        "record stop",
      ].join("; "),
    ]);
    assert.equal(r.code, 0, r.stderr);
    const text = await Deno.readTextFile(file);
    const [before, during] = text.split("// --- recording ---");
    assert.ok(during !== undefined, text);
    assert.match(
      before,
      /vm0\.readGuest\(0x0n, 8192\);\n\s*\/\/ \(its 8192 bytes were not kept: a recording checks them\)/,
    );
    assert.match(before, /kvmsh\.expectBytes\(r, unhex\("(5a){16}"\)/, "a small read keeps its check");
    assert.ok(before.length < 4096, `the session before recording is ${before.length} characters`);
    assert.match(
      during,
      new RegExp(`kvmsh\\.expectBytes\\(r, unhex\\("(5a){8192}"\\), "vm0\\.readGuest\\(0x2000n, 8192\\)"`),
      "the recorded read is checked",
    );
    const re = await replay(file);
    assert.equal(re.code, 0, `replay failed:\n${re.stdout}\n${re.stderr}`);
    await Deno.remove(dir, { recursive: true });
  },
);

gmemTest("a recording binds the guest_memfd a run made for its memory, so commands using its name replay", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/s.ts`;
  const r = await kvmsh([
    "-c",
    `record start ${file}; vm create; run --asm "movb $0x5a,0x200000; hlt" --mode long --memory gmem:mmap,init-shared; x/1xb gmem0:0x200000; record stop`,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const text = await Deno.readTextFile(file);
  assert.match(text, /const gmem0 = kvmsh\.ownMemory\(vm0\)\.gmems\[0\];/);
  const re = await replay(file);
  assert.equal(re.code, 0, `replay failed:\n${re.stdout}\n${re.stderr}`);
  assert.match(re.stdout, /ok \d+ gmem0\.readMem\(0x200000n, 1\)/);
  await Deno.remove(dir, { recursive: true });
}, "mmap,init-shared");

kvmTest("a recording of a run over its own anonymous memory: reads of that memory by GPA replay", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/s.ts`;
  const r = await kvmsh([
    "-c",
    `record start ${file}; vm create; run --asm "movb $0x5a,0x200000; hlt" --mode long; x/1xb 0x200000; record stop`,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const text = await Deno.readTextFile(file);
  assert.match(text, /kvmsh\.runGuest\(vm0, \{ asm: "movb \$0x5a,0x200000; hlt", mode: "long", timeoutMs: 5000 \}\)/);
  assert.match(text, /kvmsh\.expectBytes\(r, unhex\("5a"\), "vm0\.readGuest\(0x200000n, 1\)"\)/);
  const re = await replay(file);
  assert.equal(re.code, 0, `replay failed:\n${re.stdout}\n${re.stderr}`);
  assert.match(re.stdout, /ok \d+ vm0\.readGuest\(0x200000n, 1\)/);
  await Deno.remove(dir, { recursive: true });
});
