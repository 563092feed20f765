/**
 * `continue` and `step` show the guest's ucalls as `run` does: one `ucall …:` line each (a print's
 * text once, not again as a console line), and `ucalls` in their `--json` result. Before, only
 * `run` passed the ucalls on: a guest that reached its sync/done/assert after a `continue` or
 * `step` showed a bare `stop: done` with the values it reported nowhere.
 * @module
 */

import assert from "node:assert/strict";
import { kvmTest } from "../kvm_env.ts";
import { runC } from "./helpers.ts";

/** hlt, then ucall print "hi\n", sync(5), done(6) through the ucall block at `blk` (long mode). */
const UCALLS = [
  "hlt",
  "lea blk(%rip), %rdi",
  "movq $1, (%rdi)",
  "lea msg(%rip), %rax",
  "mov %rax, 40(%rdi)",
  "movq $3, 48(%rdi)",
  "mov $0x1000, %dx",
  "out %al, (%dx)",
  "movq $0, 40(%rdi)",
  "movq $0, 48(%rdi)",
  "movq $2, (%rdi)",
  "movq $5, 8(%rdi)",
  "out %al, (%dx)",
  "movq $4, (%rdi)",
  "movq $6, 8(%rdi)",
  "out %al, (%dx)",
  "hlt",
  "msg: .byte 0x68, 0x69, 0x0a",
  ".balign 64",
  "blk: .skip 64",
].join("; ");
const RUN = `run "${UCALLS}" --asm --mode long`;

/** The lines after the run's own `stop:` line. */
function afterRun(stdout: string): string {
  return stdout.slice(stdout.indexOf("\n", stdout.indexOf("stop: HLT")) + 1);
}

kvmTest("continue: the ucalls on the way show as run shows them (print once, sync and done values)", async () => {
  const r = await runC(["vm create", RUN, "continue"]);
  assert.equal(r.code, 0, r.stderr);
  const o = afterRun(r.stdout);
  assert.match(o, /^ucall print: hi\nucall sync: 0x5\nucall done: 0x6\nstop: done; /m);
  assert.doesNotMatch(o, /^console:/m, "a ucall print's text is shown once, as its ucall line");
});

kvmTest("step: the ucalls of the steps show too", async () => {
  const r = await runC(["vm create", RUN, "step 30"]);
  assert.equal(r.code, 0, r.stderr);
  const o = afterRun(r.stdout);
  assert.match(o, /^ucall print: hi$/m);
  assert.match(o, /^ucall sync: 0x5$/m);
  assert.match(o, /^ucall done: 0x6$/m);
  assert.match(o, /^stop: done; /m);
  assert.doesNotMatch(o, /^console:/m);
});

kvmTest("continue and step --json: the result has the ucalls (and the console as the API gives it)", async () => {
  const r = await runC(["vm create", RUN, "step 2 --json", "continue --json"]);
  assert.equal(r.code, 0, r.stderr);
  const [step, cont] = r.stdout.trim().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
  assert.deepEqual(step.result.ucalls, []);
  assert.deepEqual(cont.result.ucalls.map((u: { cmd: string }) => u.cmd), ["print", "sync", "done"]);
  assert.equal(cont.result.ucalls[1].args[0], "0x5");
  assert.equal(cont.result.ucalls[0].message, "hi\n");
  assert.equal(cont.result.console, "hi\n");
  assert.doesNotMatch(r.stdout, /^ucall /m, "--json prints no ucall lines");
});

kvmTest("continue to a ucall assert: its values show, and the status is 1", async () => {
  const guest = "hlt; lea blk(%rip), %rdi; movq $3, (%rdi); movq $7, 8(%rdi); mov $0x1000, %dx; " +
    "out %al, (%dx); hlt; .balign 64; blk: .skip 64";
  const r = await runC(["vm create", `run "${guest}" --asm --mode long`, "continue"]);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /^ucall assert: \(no message\); values 0x7 0x0\nstop: assert; /m);
  assert.match(r.stderr, /^error: continue: the guest asserted$/m);
});
