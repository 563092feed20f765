/**
 * kvmsh's exit status outside the prompt (-c, stdin, one command): 2 for usage errors and 1 for
 * kernel/runtime failures in every mode; the last `run`'s guest exit code (the byte written to
 * port 0xF4) unless a later command fails; a run stopped by its timeout, an assertion or an exit
 * kvmsh does not resume from is a failed command; Ctrl-C (SIGINT) stops the guest and the script
 * with 130.
 * @module
 */

import assert from "node:assert/strict";
import { kvmTest } from "../kvm_env.ts";
import { readProcText } from "../../ffi/procfs.ts";
import { KVMSH, kvmsh, ROOT, runC, runStdin } from "./helpers.ts";

const EXIT5 = 'run --asm "mov $5, %al; out %al, $0xf4"';
const EXIT_0x105 = 'run --asm "mov $0x105, %eax; out %eax, $0xf4"';

/** The same lines with -c and on stdin: both give `code`. */
async function both(lines: string[], code: number, extra: string[] = []) {
  const c = await runC(lines, extra);
  const s = await runStdin(lines, extra);
  assert.equal(c.code, code, `-c ${lines.join("; ")}: ${c.stderr}`);
  assert.equal(s.code, code, `stdin ${lines.join("; ")}: ${s.stderr}`);
  return [c, s];
}

kvmTest("status: usage errors are 2 and kernel failures 1 in every mode (one command, -c, stdin)", async () => {
  for (const [words, code] of [[["frob"], 2], [["caps", "NOPE"], 2], [["vm", "create", "--type", "tdx"], 1]] as const) {
    const one = await kvmsh([...words]);
    assert.equal(one.code, code, `kvmsh ${words.join(" ")}: ${one.stderr}`);
    await both([words.join(" ")], code);
  }
  await both(["echo 'open"], 2);
  await both(["vm create", "gmem create --size 1"], 1);
});

kvmTest("status: the last run's guest exit code (port 0xF4) unless a later command fails", async () => {
  const [c] = await both(["vm create", EXIT5], 5);
  assert.match(c.stdout, /exit code 0x5/);
  await both(["vm create", EXIT5, "echo after"], 5);
  await both(["vm create", EXIT_0x105], 5); // an exit status is a byte: 0x105 & 0xff
  await both(["vm create", EXIT5, 'run --asm "hlt"'], 0); // the last run wrote no exit code
  await both(["vm create", EXIT5, "frob"], 2);
  await both(["vm create", EXIT5, "gmem create --size 1"], 1);
  // --keep-going: a failure anywhere stays a failure.
  await both(["vm create", "frob", EXIT5], 2, ["--keep-going"]);
});

kvmTest("status: a run stopped by timeout, assert or an unhandled exit fails (1) and stops the script", async () => {
  const runs = [
    'run --asm "1: jmp 1b" --timeout 100ms',
    "run scripts/guests/bin/verify.elf --arg 0x200000,17,0x5a,0x100",
    'run --asm "ud2"',
  ];
  for (const run of runs) {
    const [c] = await both(["vm create", run, "echo after"], 1);
    assert.match(c.stdout, /^stop: /m, c.stdout);
    assert.doesNotMatch(c.stdout, /^after$/m, run);
    assert.match(c.stderr, /^error: run: the guest /m, c.stderr);
    const kg = await runC(["vm create", run, "echo after"], ["--keep-going"]);
    assert.equal(kg.code, 1);
    assert.match(kg.stdout, /^after$/m);
  }
  // JSON: the result is there, ok is false, the error says why.
  const j = await runC(["vm create", 'run --asm "1: jmp 1b" --timeout 100ms --json']);
  const o = JSON.parse(j.stdout.trim().split("\n").at(-1)!);
  assert.equal(o.ok, false);
  assert.equal(o.result.stop, "timeout");
  assert.match(o.error.message, /timeout/);
});

kvmTest("status: HLT, an exit code and ucall done are successful runs", async () => {
  await both(["vm create", "run scripts/guests/bin/hello16.bin --mode real"], 0);
  await both(["vm create", "run scripts/guests/bin/ucall_demo.elf"], 0);
  await both(["vm create", "run scripts/guests/bin/verify.elf --arg 0x200000,16,0,0x100"], 0);
});

/** Starts kvmsh, waits until the guest spins, sends SIGINT, returns what it did. */
async function interrupted(args: string[], stdin?: string) {
  const child = new Deno.Command(KVMSH, {
    args,
    cwd: ROOT,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", KVMSH_HISTORY: "/dev/null" },
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const dec = new TextDecoder();
  let text = "";
  const reader = child.stdout.getReader();
  while (!text.includes("vm0:")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += dec.decode(value);
  }
  // The guest is in its loop once the process burns CPU (a spinning vCPU; an idle Deno does not):
  // at least 300 ms of it, and 700 ms of wall time for the watchdog worker's SIGINT listener.
  const cpu = () => {
    const f = (readProcText(`/proc/${child.pid}/stat`) ?? "").replace(/^.*\) /s, "").split(" ");
    return (Number(f[11]) + Number(f[12])) * 10; // utime + stime, in 10 ms clock ticks
  };
  const start = cpu();
  const t0 = Date.now();
  while ((cpu() - start < 300 || Date.now() - t0 < 700) && Date.now() - t0 < 10_000) {
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill("SIGINT");
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += dec.decode(value);
  }
  const errText = dec.decode(new Uint8Array(await new Response(child.stderr).arrayBuffer()));
  const st = await child.status;
  return { code: st.code, signal: st.signal, stdout: text, stderr: errText };
}

kvmTest("status: Ctrl-C (SIGINT) during -c or stdin stops the guest and the script: 130", async () => {
  const lines = ["vm create", 'run --asm "1: jmp 1b" --timeout 0', "echo after"];
  for (const r of [await interrupted(["-c", lines.join("; ")]), await interrupted([], lines.join("\n") + "\n")]) {
    assert.equal(r.code, 130, r.stderr);
    assert.equal(r.signal, null, "kvmsh exits by itself after stopping the guest");
    assert.match(r.stdout, /stop: interrupt/);
    assert.doesNotMatch(r.stdout, /^after$/m);
    assert.match(r.stderr, /^error: interrupted \(SIGINT\)/m);
  }
});

kvmTest("status: help says what the exit status is", async () => {
  const r = await runC(["help"]);
  assert.match(r.stdout, /exit status/i);
  assert.match(r.stdout, /0xF4/);
  assert.match(r.stdout, /130/);
  const run = await runC(["help run"]);
  assert.match(run.stdout, /0xF4/);
});
