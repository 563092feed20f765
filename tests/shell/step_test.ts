/**
 * `step` and `continue` through the real shell: single-steps in real and long mode from where
 * `run` stopped (HLT, its timeout), IO exits on the way, the bytes at RIP; `continue` after a
 * timeout and to HLT; bad input; `--json` shapes; record → replay with the same RIPs; Ctrl-C at
 * a real prompt (tmux); completion; `run --arg` given repeatedly.
 * @module
 */

import assert from "node:assert/strict";
import { kvmTest } from "../kvm_env.ts";
import { kvmsh, ROOT, runC } from "./helpers.ts";
import { Tmux } from "./tmux.ts";
import { complete } from "../../shell/complete.ts";
import { runLine } from "../../shell/dispatch.ts";
import { Session } from "../../shell/session.ts";

/** hlt@0 nop@1 mov $0x41,%al@2 out@4 out@6 nop@8 jmp $@9 (real mode): the guest most tests step through. */
const REAL = `run "hlt; nop; mov $0x41, %al; out %al, $0xe9; out %al, $0xe9; nop; 1: jmp 1b" --asm --mode real`;

kvmTest("step: n=1 and n=3 in real mode from a HLT stop; IO exits on the way; bytes at RIP", async () => {
  const r = await runC(["vm create", REAL, "step", "step 3", "step 2"]);
  assert.equal(r.code, 0, r.stderr);
  const o = r.stdout;
  assert.match(o, /stop: HLT; last exit HLT/);
  // step 1: hlt@0 is done, nop@1 → rip 2.
  assert.match(o, /^vcpu0: step 1: rip 0x2 \(pc 0x10002\)$/m);
  assert.match(o, /^rip 0x2 \(real mode, cs:ip 0x1000:0x2, linear 0x10002, gpa 0x10002\): b0 41 e6 e9 e6 e9 90 eb fe/m);
  // step 3: mov → 4; the two OUTs show as IO exits (on kvm_pvm the DEBUG exit comes after the next
  // instruction that does not exit, so one step can cover both OUTs and the nop).
  const three = o.slice(o.indexOf("b0 41 e6 e9"));
  assert.match(three, /^vcpu0: step 1: rip 0x4 \(pc 0x10004\)$/m);
  assert.match(three, /^vcpu0: step 2: rip 0x[689] \(pc 0x1000[689]\) after IO out port=0xe9 size=1 data=0x41/m);
  assert.match(three, /^console: AA$/m);
  assert.match(three, /^vcpu0: step 3: rip 0x/m);
  // The jmp $ at 9: the last step command leaves RIP on it.
  assert.match(o, /vcpu0: step 1: rip 0x9 \(pc 0x10009\)\nvcpu0: step 2: rip 0x9 \(pc 0x10009\)\n/);
  assert.match(o, /^rip 0x9 \(real mode, cs:ip 0x1000:0x9, linear 0x10009, gpa 0x10009\): eb fe 00/m);
  assert.equal(r.stderr, "");
});

kvmTest("step: n=1 and n=3 in long mode (RIP = linear = GPA through identity page tables)", async () => {
  const r = await runC([
    "vm create",
    'run "hlt; nop; nop; mov $0x42, %al; out %al, $0xe9; nop; hlt" --asm --mode long',
    "step",
    "step 3",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^vcpu0: step 1: rip 0x100002 \(pc 0x100002\)$/m);
  assert.match(r.stdout, /^rip 0x100002 \(long mode, linear 0x100002, gpa 0x100002\): 90 b0 42 e6 e9 90 f4/m);
  assert.match(r.stdout, /^vcpu0: step 2: rip 0x100005 \(pc 0x100005\)$/m);
  assert.match(
    r.stdout,
    /^vcpu0: step 3: rip 0x10000[78] \(pc 0x10000[78]\) after IO out port=0xe9 size=1 data=0x42$/m,
  );
  assert.match(r.stdout, /^console: B$/m);
});

kvmTest("run --timeout on jmp $, then step: RIP unchanged at the jmp; continue runs on to the timeout", async () => {
  const r = await runC([
    "vm create",
    'run "nop; 1: jmp 1b" --asm --mode real --timeout 1s',
    "step",
    "continue --timeout 300ms",
    "regs",
  ], ["--keep-going"]); // a run stopped by its timeout is a failed command
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    /^error: run: the guest did not finish within its --timeout \(1000 ms\)\nerror: continue: the guest did not finish within its --timeout \(300 ms\)\n$/,
  );
  assert.match(r.stdout, /stop: timeout; last exit INTR \(KVM_RUN: EINTR\)/);
  assert.match(r.stdout, /^vcpu0: step 1: rip 0x1 \(pc 0x10001\)$/m);
  assert.match(r.stdout, /^rip 0x1 \(real mode, cs:ip 0x1000:0x1, linear 0x10001, gpa 0x10001\): eb fe/m);
  const cont = /stop: timeout; last exit INTR \(KVM_RUN: EINTR\); 1 exits in ([\d.]+) ms\nvcpu0: rip 0x1$/m.exec(
    r.stdout,
  );
  assert.ok(cont, r.stdout);
  assert.ok(Number(cont[1]) >= 295, `continue --timeout 300ms ran ${cont[1]} ms`); // no upper bound: a loaded host is slow
  assert.match(r.stdout, /rip 0x0000000000000001/);
});

kvmTest(
  "continue after a timeout-stopped run goes on from there to HLT; continue to HLT prints the console",
  async () => {
    const r = await runC([
      "vm create",
      'run "1: jmp 1b; mov $0x43, %al; out %al, $0xe9; hlt; mov $0x44, %al; out %al, $0xe9; hlt" --asm --mode real --timeout 300ms',
      "continue --timeout 200ms",
      "regs set rip=2",
      "continue",
      "continue",
    ], ["--keep-going"]); // a run or continue stopped by its timeout is a failed command
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /^error: run: the guest did not finish within its --timeout \(300 ms\)\nerror: continue: the guest did not finish within its --timeout \(200 ms\)\n$/,
    );
    const parts = r.stdout.split(/^stop: /m);
    assert.match(parts[1], /^timeout; last exit INTR/, "run: timeout");
    assert.match(parts[2], /^timeout; last exit INTR/, "continue: timeout again, still on the jmp");
    assert.match(parts[2], /vcpu0: rip 0x0\n/);
    assert.match(parts[2], /\nconsole: C\n$/, "after regs set rip=2: the OUT prints C");
    assert.match(parts[3], /^HLT; last exit HLT; 2 exits in [\d.]+ ms\nvcpu0: rip 0x7\n/);
    assert.match(parts[3], /\nconsole: D\n$/);
    assert.match(parts[4], /^HLT; last exit HLT; 2 exits in [\d.]+ ms\nvcpu0: rip 0xc\n?$/);
  },
);

kvmTest("step/continue bad input: one clear line each, nothing sent, the shell goes on", async () => {
  const cases: [string[], RegExp][] = [
    [["step"], /^error: no current VM: `vm create` first \(or `use vmN`\)$/m],
    [["continue"], /^error: no current VM: `vm create` first \(or `use vmN`\)$/m],
    [["regs"], /^error: no current VM: `vm create` first \(or `use vmN`\)$/m],
    [["vm create", "step"], /^error: no vCPU on the current VM: `vcpu create` first$/m],
    [["vm create", "vcpu create", "step 0"], /^error: step count must be at least 1$/m],
    [["vm create", "vcpu create", "step x"], /^error: step count: not a number: 'x'/m],
    [["vm create", "vcpu create", "step 1 2"], /^error: too many arguments for 'step': '2'/m],
    [["vm create", "vcpu create", "step --vcpu vcpu9"], /^error: no vCPU 'vcpu9' \(open: vcpu0\)$/m],
    [["vm create", "vcpu create", "step --timeout soon"], /^error: bad --timeout 'soon'/m],
    [["vm create", "vcpu create", "continue --timeout"], /^error: missing value for --timeout/m],
    [["vm create", "vcpu create", "continue --bogus"], /^error: unknown flag '--bogus' for 'continue'/m],
    [["vm create", "vcpu create", "vm close vm0", "step --vcpu vcpu0"], /^error: vcpu0 is closed$/m],
  ];
  for (const [lines, err] of cases) {
    const r = await runC([...lines, "echo after"], ["--keep-going"]);
    assert.equal(r.code, 2, `a usage error: ${lines.join("; ")}: ${r.stderr}`);
    assert.match(r.stderr, err, lines.join("; "));
    assert.equal(r.stderr.trim().split("\n").length, 1, `one line: ${r.stderr}`);
    assert.match(r.stdout, /^after$/m);
  }
  // A vCPU nothing was loaded into: the VM has no memslot; the kernel's answer is shown, with a warning.
  const fresh = await runC(["vm create", "vcpu create", "step", "echo after"], ["--keep-going"]);
  assert.match(fresh.stderr, /warning: vm0 has no memslot, so the guest has nothing to run from/);
  assert.match(fresh.stderr + fresh.stdout, /KVM_RUN|INTERNAL_ERROR|MMIO/);
  assert.match(fresh.stdout, /^after$/m);
  assert.doesNotMatch(fresh.stderr, /Uncaught|at .*\.ts:\d+/);
});

kvmTest("--json: step and continue print one object each with the documented shape", async () => {
  const r = await runC([
    "vm create",
    'run "hlt; mov $0x45, %al; out %al, $0xe9; nop; 1: jmp 1b" --asm --mode real',
    "step 2 --json",
    "continue --timeout 200ms --json",
    "step --vcpu vcpu5 --json",
  ], ["--keep-going"]);
  const lines = r.stdout.trim().split("\n").filter((l) => l.startsWith("{"));
  assert.equal(lines.length, 3, r.stdout);
  const [step, cont, bad] = lines.map((l) => JSON.parse(l));
  assert.equal(step.command, "step");
  assert.equal(step.ok, true);
  const s = step.result;
  assert.deepEqual(
    Object.keys(s).sort(),
    ["code", "console", "count", "elapsedMs", "exit", "exits", "stepped", "steps", "stop", "trail", "ucalls", "vcpu"],
  );
  assert.equal(s.vcpu, "vcpu0");
  assert.equal(s.count, 2);
  assert.equal(s.stepped, 2);
  assert.equal(s.stop, "exit");
  assert.equal(s.exit.name, "DEBUG");
  assert.equal(s.steps.length, 2);
  assert.equal(s.steps[0].rip, "0x3");
  assert.equal(s.steps[0].pc, "0x10003");
  assert.deepEqual(s.steps[1].exits.map((e: { name: string }) => e.name), ["IO"]);
  assert.equal(s.steps[1].exits[0].io.port, 0xe9);
  assert.equal(s.console, "E");
  assert.equal(s.code.mode, "real");
  assert.equal(s.code.rip, s.steps[1].rip);
  assert.match(s.code.bytes, /^[0-9a-f]{30}$/);
  assert.equal(cont.command, "continue");
  assert.deepEqual(
    Object.keys(cont.result).sort(),
    ["code", "console", "elapsedMs", "exit", "exits", "rip", "stop", "ucalls", "vcpu"],
  );
  assert.equal(cont.result.code.rip, cont.result.rip, "stopped by its timeout: where it was");
  assert.equal(cont.result.stop, "timeout");
  assert.equal(cont.result.exit.name, "INTR");
  assert.equal(bad.ok, false);
  assert.equal(bad.error.error, "UsageError");
  assert.match(bad.error.message, /no vCPU 'vcpu5'/);
});

kvmTest("record → replay with step and continue: the replay gets the same RIPs", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/steps.ts`;
  try {
    // --keep-going: the continue stopped by its timeout is a failed command (the script goes on).
    const live = await kvmsh(
      ["--keep-going"],
      [
        "vm create",
        `record start ${file}`,
        REAL,
        "step",
        "step 3",
        "continue --timeout 200ms",
        "step 2",
        "vcpu create",
        "regs set rip=0",
        "step --vcpu vcpu1",
        "record stop",
      ].join("\n") + "\n",
    );
    assert.equal(live.code, 1, live.stderr);
    // The step of the fresh vcpu1 (rip 0, nothing there) ends on an exit kvmsh does not resume
    // from (INTERNAL_ERROR on this host's emulation): also a failure, and the replay checks it.
    assert.match(
      live.stderr,
      /^error: continue: the guest did not finish within its --timeout \(200 ms\)\nerror: step: the guest stopped on [A-Z_]+, an exit kvmsh does not resume from\n$/,
    );
    const text = await Deno.readTextFile(file);
    assert.ok(text.includes("kvmsh.stepVcpu(vm0.vcpus.find((v) => v.id === 0)!, { count: 3, timeoutMs: 5000 })"), text);
    assert.ok(text.includes("kvmsh.runVcpu(vm0.vcpus.find((v) => v.id === 0)!, { timeoutMs: 200 })"), text);
    assert.ok(text.includes("kvmsh.stepVcpu(vcpu1, { count: 1, timeoutMs: 5000 })"), text);
    assert.match(text, /r\.steps\.map\(\(s\) => s\.rip\), \[0x2n\]/);
    assert.match(text, /r\.steps\.map\(\(s\) => s\.rip\), \[0x9n, 0x9n\]/);
    const o = await new Deno.Command(`${ROOT}deno`, {
      args: ["run", "-A", file],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    const out = new TextDecoder().decode(o.stdout);
    assert.equal(o.code, 0, `replay failed:\n${out}\n${new TextDecoder().decode(o.stderr)}`);
    assert.match(out, /ok \d+ kvmsh\.stepVcpu\(vm0\.vcpus\.find\(.*\{ count: 3, .*: RIP after each step/);
    assert.doesNotMatch(out, /^\s*not ok/m);
    assert.match(out, /# Totals: pass:\d+ fail:0/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

kvmTest("help, completion: step and continue with usage, example and flags", async () => {
  const h = await runC(["help step", "help continue", "help run"]);
  assert.match(h.stdout, /step \[n\] \[--vcpu vcpuN\] \[--timeout 5s\]/);
  assert.match(h.stdout, /example: step 3/);
  assert.match(h.stdout, /continue \[--timeout 5s\] \[--vcpu vcpuN\]/);
  assert.match(h.stdout, /example: continue --timeout 1s/);
  assert.match(h.stdout, /--arg V: .*repeat it \(--arg 1 --arg 0x2000\)/);
  const ctx = new Session();
  try {
    assert.deepEqual(complete(ctx, "ste")[0], ["step "]);
    assert.deepEqual(complete(ctx, "cont")[0], ["continue "]);
    assert.deepEqual(complete(ctx, "step --")[0], ["--json ", "--timeout ", "--vcpu "]);
    assert.deepEqual(complete(ctx, "continue --t")[0], ["--timeout "]);
    assert.deepEqual(complete(ctx, 'run "hlt" --asm --arg 1 --a')[0], ["--arg "], "--arg may repeat");
    assert.deepEqual(complete(ctx, 'run "hlt" --asm --mode real --mo')[0], []);
    await runLine(ctx, "vm create; vcpu create; vcpu create");
    assert.deepEqual(complete(ctx, "step --vcpu vcpu")[0], ["vcpu0", "vcpu1"]);
    assert.deepEqual(complete(ctx, "continue --vcpu vcpu1")[0], ["vcpu1"]);
  } finally {
    ctx.close();
  }
});

kvmTest("run --arg repeated and as a list: rdi, rsi, rdx in order", async () => {
  const r = await runC([
    "vm create",
    'run "hlt" --asm --arg 1 --arg 0x2000 --arg=3',
    "regs",
    'run "hlt" --asm --arg 4,5 --arg 6',
    "regs",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const regs = r.stdout.split("vcpu0:\n").slice(1);
  assert.match(regs[0], /rdx 0x0000000000000003/);
  assert.match(regs[0], /rsi 0x0000000000002000 +rdi 0x0000000000000001/);
  assert.match(regs[1], /rdx 0x0000000000000006/);
  assert.match(regs[1], /rsi 0x0000000000000005 +rdi 0x0000000000000004/);
  const many = await runC(["vm create", 'run "hlt" --asm --arg 1,2,3,4 --arg 5 --arg 6 --arg 7']);
  assert.equal(many.code, 2);
  assert.match(many.stderr, /--arg: at most 6 values/);
});

// --- Ctrl-C at a real prompt (tmux): the kick stops continue and a long step; the shell goes on.

const t = new Tmux("kvmsh-step");
const waitFor = (re: RegExp) => t.waitFor("s", re, 15_000, 200);

kvmTest("tty: Ctrl-C stops continue and a long step through the kick; the prompt comes back", async () => {
  const dir = await Deno.makeTempDir();
  try {
    t.start("s", `KVMSH_HISTORY=${dir}/h NO_COLOR=1`);
    const keys = (...k: string[]) => t.keys("s", ...k);
    await waitFor(/kvmsh>\s*$/m);
    keys('vm create; run "1: jmp 1b" --asm --timeout 200ms', "Enter");
    await waitFor(/stop: timeout; last exit INTR/);
    keys("continue --timeout 60s", "Enter");
    await new Promise((r) => setTimeout(r, 1000));
    keys("C-c");
    await waitFor(/stop: interrupt; last exit INTR \(KVM_RUN: EINTR\)[^\n]*\nvcpu0: rip 0x100000/);
    keys("step 100000000 --timeout 60s", "Enter");
    await new Promise((r) => setTimeout(r, 1000));
    keys("C-c");
    const s = await waitFor(/step 100000000 --timeout 60s\n[\s\S]*stop: interrupt; last exit/);
    assert.match(s, /^vcpu0: \d+ of 100000000 steps done/m);
    assert.match(s, /vcpu0: … \d+ more steps …\n(vcpu0: step \d+: rip 0x100000 \(pc 0x100000\)\n){8}/);
    keys("echo still here", "Enter");
    await waitFor(/^still here$/m);
    keys("C-d");
    await waitFor(/EXIT=0/);
  } finally {
    t.kill();
    await Deno.remove(dir, { recursive: true });
  }
});
