/** REPL `--timeout 0` / `--timeout none`: no timeout (the run goes to the guest's end); bad values are usage errors. */

import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { kvmTest } from "../kvm_env.ts";
import { runC } from "./helpers.ts";

/** 4096 console exits, then exit code 5 (many more exits than the exit loop's deadline check interval). */
const CHATTY = "mov $4096, %ecx; 1: mov $0x2e, %al; out %al, $0xe9; dec %ecx; jnz 1b; mov $5, %al; out %al, $0xf4";

for (const t of ["0", "none"]) {
  kvmTest(`kvmsh: run --timeout ${t} runs a guest with 4096 exits to its end`, async () => {
    const r = await runC(["vm create", `run --asm --timeout ${t} "${CHATTY}"`]);
    eq(r.code, 5, r.stderr); // the guest's exit code is kvmsh's status
    ok(r.stdout.includes("stop: exit-code (exit code 0x5)"), r.stdout);
    ok(r.stdout.includes("4097 exits"), r.stdout);
  });
}

kvmTest("kvmsh: run --timeout with a bad value is an error naming the flag; nothing runs", async () => {
  const r = await runC(["vm create", `run --asm --timeout never "hlt"`]);
  ok(r.code !== 0);
  ok(r.stderr.includes("bad --timeout 'never'") && r.stderr.includes("none: no timeout"), r.stderr);
  ok(!r.stdout.includes("stop:"), r.stdout);
});
