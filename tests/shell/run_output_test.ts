/**
 * What `run` shows of the guest: each ucall (print, sync, assert with its message and values,
 * done) as a line when it happens, before the stop line; `ucalls` and `exitCode` in --json.
 * `run --userspace` without gmem memory is a usage error (every host); with gmem memory it is
 * accepted, and runs where KVM makes the guest_memfd (elsewhere KVM's refusal is checked).
 * @module
 */

import assert from "node:assert/strict";
import { GMEM_MMAP_SKIP_REASON, GMEM_SKIP_REASON, kvmTest } from "../kvm_env.ts";
import { runC } from "./helpers.ts";

kvmTest("run: a ucall assert shows its message and values (verify.elf on a byte that differs)", async () => {
  const r = await runC(["vm create", "run scripts/guests/bin/verify.elf --arg 0x200000,17,0x5a,0x100"]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stdout,
    /^ucall assert: byte differs from the expected value; values 0x200000 0x0\n(console: .*\n)*stop: assert/m,
  );
  assert.match(r.stderr, /^error: run: the guest asserted: byte differs from the expected value$/m);
});

kvmTest("run: print, sync and done ucalls each print a line in order, before the stop line", async () => {
  const r = await runC(["vm create", "run scripts/guests/bin/ucall_demo.elf"]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split("\n").filter((l) => l.startsWith("ucall ") || l.startsWith("stop: "));
  assert.deepEqual(lines.slice(0, 4), [
    "ucall print: hello from a ucall",
    "ucall sync: 0x1",
    "ucall sync: 0x2",
    "ucall done: 0x0",
  ]);
  assert.match(lines[4], /^stop: /);
});

kvmTest("run --json: ucalls and exitCode in the result", async () => {
  const r = await runC(["vm create", "run scripts/guests/bin/ucall_demo.elf --json"]);
  const o = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
  assert.equal(o.ok, true);
  assert.deepEqual(o.result.ucalls.map((u: { cmd: string }) => u.cmd), ["print", "sync", "sync", "done"]);
  assert.equal(o.result.ucalls[0].message, "hello from a ucall\n");
  assert.equal(o.result.ucalls[1].args[0], "0x1");
  assert.equal(o.result.exitCode, undefined);
  assert.doesNotMatch(r.stdout, /^ucall /m, "no text lines with --json");
  const e = await runC(["vm create", 'run --asm "mov $5, %al; out %al, $0xf4" --json']);
  const x = JSON.parse(e.stdout.trim().split("\n").at(-1)!);
  assert.deepEqual(x.result.exitCode, { value: 5, status: 11 });
  assert.deepEqual(x.result.ucalls, []);
  const v = await runC(["vm create", "run scripts/guests/bin/verify.elf --arg 0x200000,17,0x5a,0x100 --json"]);
  const a = JSON.parse(v.stdout.trim().split("\n").at(-1)!);
  assert.equal(a.ok, false);
  assert.equal(a.result.ucalls[0].cmd, "assert");
  assert.deepEqual(a.result.ucalls[0].args.slice(0, 2), ["0x200000", "0x0"]);
});

kvmTest(
  "run stopped by its timeout shows where the guest is: RIP and the instruction bytes (jmp . is eb fe)",
  async () => {
    const r = await runC(["vm create", 'run --asm "1: jmp 1b" --timeout 200ms'], ["--keep-going"]);
    assert.match(
      r.stdout,
      /^stop: timeout; .*\nrip 0x100000 \(long mode, linear 0x100000, gpa 0x100000\): eb fe .*\(jmp \.\)$/m,
    );
    const j = await runC(["vm create", 'run --asm "1: jmp 1b" --timeout 200ms --json']);
    const o = JSON.parse(j.stdout.trim().split("\n").at(-1)!);
    assert.equal(o.result.code.rip, "0x100000");
    assert.match(o.result.code.bytes, /^ebfe/);
    const c = await runC(["vm create", 'run --asm "hlt; 1: jmp 1b"', "continue --timeout 200ms"], ["--keep-going"]);
    assert.match(c.stdout, /^stop: timeout; .*\nvcpu0: rip 0x100001\nrip 0x100001 \(long mode, .*\): eb fe/m);
  },
);

kvmTest(
  "run map_gpa.elf: vmcall does not reach userspace here; --exit-hypercall asks KVM (through the API) and the run shows it spinning on vmcall",
  async () => {
    for (const extra of ["", " --exit-hypercall"]) {
      const r = await runC([
        "vm create",
        `run scripts/guests/bin/map_gpa.elf --arg 0x100000000,1,0 --timeout 300ms${extra}`,
      ]);
      if (extra) {
        assert.match(r.stdout, /^exit-hypercall: KVM_ENABLE_CAP\(KVM_CAP_EXIT_HYPERCALL, KVM_HC_MAP_GPA_RANGE\): \S/m);
      } else assert.doesNotMatch(r.stdout, /exit-hypercall/);
      // Host property (kvm_pvm): the hypercall never exits to userspace, so the guest is stopped by the timeout on
      // its vmcall. A host where it does exit gets the conversion line and `stop: done` instead.
      if (/^stop: timeout/m.test(r.stdout)) {
        assert.match(r.stdout, /^rip 0x[0-9a-f]+ \(long mode, .*\): 0f 01 (c1|d9) .*\(vmm?call\)$/m);
        assert.equal(r.code, 1);
      } else {
        assert.match(r.stdout, /^hypercall MAP_GPA_RANGE gpa 0x100000000 npages 0x1 .*→ shared: /m);
      }
    }
    const j = await runC([
      "vm create",
      "run scripts/guests/bin/map_gpa.elf --arg 0x100000000,1,0 --timeout 300ms --exit-hypercall --json",
    ]);
    const o = JSON.parse(j.stdout.trim().split("\n").at(-1)!);
    assert.equal(typeof o.result.hypercallExit, "string");
    assert.ok(Array.isArray(o.result.conversions));
  },
);

kvmTest(
  "run --userspace without gmem memory is a usage error (it only applies to --memory gmem…); nothing runs",
  async () => {
    for (const mem of ["", " --memory anon"]) {
      const r = await runC(["vm create", `run --asm hlt --userspace none${mem}`]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(
        r.stderr,
        /^error: --userspace none applies to guest_memfd memory only: add --memory gmem:<flags> \(the main memory is anonymous\)$/m,
      );
      assert.doesNotMatch(r.stdout, /stop:/);
    }
    const ok = await runC(["vm create", "run --asm hlt --memory gmem:mmap,init-shared --userspace gmem"]);
    if (GMEM_MMAP_SKIP_REASON === undefined) assert.equal(ok.code, 0, ok.stderr);
    else {
      // With gmem memory the flag is accepted (no usage error): the run goes to KVM, which cannot make the guest_memfd.
      assert.equal(ok.code, 1, ok.stderr);
      assert.match(ok.stderr, /^error: KVM_CREATE_GUEST_MEMFD: E[A-Z]+ .*\[size=0x400000 flags=mmap\|init-shared\]/m);
      if (GMEM_SKIP_REASON !== undefined) assert.match(ok.stderr, /: ENOTTY .* — this kernel has no guest_memfd/);
      assert.doesNotMatch(ok.stderr, /--userspace/);
      assert.doesNotMatch(ok.stdout, /stop:/);
    }
  },
);

kvmTest("run --vcpu of another VM: a usage error naming both VMs, nothing runs; after `use` it runs", async () => {
  const r = await runC(["vm create", "vcpu create", "vm create", "run --asm hlt --vcpu vcpu0"]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^error: run: vcpu0 belongs to vm0, and run uses the current VM vm1 \(use vm0 first\)$/m);
  assert.doesNotMatch(r.stdout, /stop: /);
  const ok = await runC(["vm create", "vcpu create", "vm create", "use vm0", "run --asm hlt --vcpu vcpu0"]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /^stop: HLT;/m);
});

kvmTest(
  "run --memory gmem with a guest file that is not there (or empty, or a directory): the usage error alone, no caps warning",
  async () => {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeFile(`${dir}/empty.bin`, new Uint8Array());
      await Deno.writeFile(`${dir}/hlt.bin`, new Uint8Array([0xf4]));
      const cases: [string, RegExp][] = [
        [`${dir}/nope.bin`, /^error: run: no guest file '[^']*nope\.bin'/m],
        [`${dir}/empty.bin`, /^error: run: '[^']*empty\.bin' is empty$/m],
        [dir, /^error: run: cannot read '[^']*': is a directory$/m],
      ];
      for (const [guest, want] of cases) {
        const r = await runC(["vm create", `run --memory gmem:mmap,init-shared --mode real ${guest}`]);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, want);
        assert.doesNotMatch(r.stderr, /warning|sending anyway/, "nothing was sent: nothing to warn about");
      }
      // A guest file that is there is sent, after the warning where the host has no guest_memfd.
      const sent = await runC(["vm create", `run --memory gmem:mmap,init-shared --mode real ${dir}/hlt.bin`]);
      if (GMEM_SKIP_REASON === undefined) assert.doesNotMatch(sent.stderr, /sending anyway/);
      else {
        assert.equal(sent.code, 1, sent.stderr);
        assert.match(
          sent.stderr,
          /^warning: KVM_CAP_GUEST_MEMFD=0 on vm0 \(default VM\): [^\n]*sending anyway\nerror: KVM_CREATE_GUEST_MEMFD: ENOTTY/m,
        );
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
