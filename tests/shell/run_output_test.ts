/**
 * What `run` shows of the guest: each ucall (print, sync, assert with its message and values,
 * done) as a line when it happens, before the stop line; `ucalls` and `exitCode` in --json.
 * @module
 */

import assert from "node:assert/strict";
import { kvmTest } from "../kvm_env.ts";
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
