/**
 * Wording: `recorded 1 command` (singular), the replay hint names `./kvmsh scenario` (a recording
 * is a scenario) and that replay passes, `--json` names `x/4xb` as typed, a ucall print shows once.
 * @module
 */

import assert from "node:assert/strict";
import { kvmTest } from "../kvm_env.ts";
import { kvmsh, runC } from "./helpers.ts";

kvmTest("record: 'recorded 1 command' / '2 commands'; the hint says ./kvmsh scenario, which replays it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const one = await runC([`record start ${dir}/one.ts`, "vm create", "record stop"]);
    assert.equal(one.code, 0, one.stderr);
    assert.match(
      one.stdout,
      new RegExp(`^recording to ${dir}/one\\.ts \\(replay with \\./kvmsh scenario ${dir}/one\\.ts\\)$`, "m"),
    );
    assert.match(one.stdout, /^recorded 1 command to /m);
    const two = await runC([`record start ${dir}/two.ts`, "vm create", "vm create", "record stop"]);
    assert.match(two.stdout, /^recorded 2 commands to /m);
    const text = await Deno.readTextFile(`${dir}/one.ts`);
    assert.match(text, /^\/\/ Replay: \.\/kvmsh scenario <this file>/m);
    assert.doesNotMatch(text, /deno run/);
    const replay = await kvmsh(["scenario", `${dir}/one.ts`]);
    assert.equal(replay.code, 0, replay.stdout + replay.stderr);
    assert.match(replay.stdout, /^ok 1 recorded kvmsh session/m);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

kvmTest("--json: x/4xb is named x/4xb (success and failure)", async () => {
  const r = await runC([
    "vm create",
    "gmem create --size 2M --flags mmap,init-shared",
    "x/4xb gmem0:0",
    "x/2xg nomap:0",
  ], [
    "--json",
    "-k",
  ]);
  const names = r.stdout.trim().split("\n").map((l) => JSON.parse(l).command);
  assert.deepEqual(names, ["vm create", "gmem create", "x/4xb", "x/2xg"]);
});

kvmTest("run: a ucall print shows once (as its ucall line), console lines keep the console ports' bytes", async () => {
  const r = await runC([
    "vm create",
    "run scripts/guests/bin/ucall_demo.elf",
    'run "mov $0x41, %al; out %al, $0xe9; mov $0xa, %al; out %al, $0xe9; hlt" --asm',
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.match(/hello from a ucall/g)?.length, 1, r.stdout);
  assert.match(r.stdout, /^ucall print: hello from a ucall$/m);
  assert.match(r.stdout, /^console: A$/m);
});
