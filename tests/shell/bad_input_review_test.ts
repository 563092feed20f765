/**
 * Bad input found in review, each a usage error (exit 2, one clear line, nothing sent or created):
 * a guest that is a device or empty (a /proc file is not), one too large to read, a VM type that is an object property or past 32 bits, a
 * `fill:` too large for write(2) on a guest_memfd, a typo in `--memory gmem:<flags>`, `-c` and a
 * command together.
 */

import assert from "node:assert/strict";
import { gmemTest, kvmTest } from "../kvm_env.ts";
import { kvmsh, runC } from "./helpers.ts";

const cases: [string[], RegExp][] = [
  [["vm create", "run /dev/zero"], /^error: run: '\/dev\/zero' is not a regular file$/m],
  [["vm create", "run /dev/null"], /^error: run: '\/dev\/null' is not a regular file$/m],
  [["vm create --type toString"], /^error: unknown VM type 'toString' \(known: default, /m],
  [["vm create --type 0x100000000"], /^error: --type: 0x100000000 is larger than 4294967295$/m],
  [
    ["vm create", 'run "hlt" --asm --memory gmem:bogus'],
    /^error: unknown gmem flag 'bogus' \(known: mmap, init-shared\)$/m,
  ],
  [
    ["vm create", `run "hlt" --asm --timeout ${"9".repeat(400)}`],
    /^error: --timeout: '9+' is too long \(use 0 or none/m,
  ],
  // A bug hunt's: a flag given twice (the last won silently), `slot set` alone (it asked for --gpa
  // first), a touch of a name that is no guest_memfd (and --value without --write: gmemCases).
  [["vm create", "gmem create --size 2M --size 4M"], /^error: --size given twice \('2M', then '4M'\): give it once$/m],
  [["vm create", "slot set"], /^error: missing <id> \(usage: slot set <id>/m],
  [["vm create", "touch gmem9:0"], /^error: no guest_memfd 'gmem9' \(none open\)$/m],
  // A register given twice in one `regs set` (the last won silently).
  [["vm create", "vcpu create", "regs set rax=1 RAX=2"], /^error: regs set: rax given twice$/m],
];

/** The cases on a guest_memfd: skipped, with the reason, where KVM cannot make one with mmap. */
const gmemCases: [string[], RegExp][] = [
  [
    ["vm create", "gmem create --size 4M --flags mmap", "gmem write gmem0 fill:0:2M"],
    /^error: fill: at most 0x100000 bytes through the fd$/m,
  ],
  [
    ["vm create", "gmem create --size 2M --flags mmap", "touch gmem0:0 --value 5"],
    /^error: --value is the byte --write stores$/m,
  ],
];

async function usageErrors(list: [string[], RegExp][]): Promise<void> {
  for (const [lines, re] of list) {
    const r = await runC(lines);
    assert.equal(r.code, 2, `${lines.join("; ")}: ${r.stderr}`);
    assert.match(r.stderr, re, lines.join("; "));
    assert.doesNotMatch(r.stderr, /at file:|Uncaught/);
  }
}

gmemTest("bad input from review on a guest_memfd: each is a usage error (exit 2) with one clear line", async () => {
  await usageErrors(gmemCases);
}, "mmap");

kvmTest("bad input from review: each is a usage error (exit 2) with one clear line", async () => {
  await usageErrors(cases);
  const empty = await Deno.makeTempFile({ suffix: ".bin" });
  try {
    const r = await runC(["vm create", `run ${empty}`]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^error: run: '.*' is empty$/m);
  } finally {
    await Deno.remove(empty);
  }
  // A /proc file says size 0 but is not empty (it runs, as the bytes it is); a sparse 2 GiB file
  // is refused before it is read.
  const proc = await runC(["vm create", "run /proc/self/status --timeout 1"]);
  assert.doesNotMatch(proc.stderr, /is empty/, proc.stderr);
  const big = await Deno.makeTempFile({ suffix: ".bin" });
  try {
    await Deno.truncate(big, 2 ** 31);
    const t0 = performance.now();
    const r = await runC(["vm create", `run ${big}`]);
    assert.match(r.stderr, /^error: '.*' is 2 GiB: more than the 1 GiB kvmsh reads$/m, r.stderr);
    assert.ok(performance.now() - t0 < 5000, "refused without reading it");
  } finally {
    await Deno.remove(big);
  }
});

Deno.test("-c and a command together are a usage error, not one silently dropped", async () => {
  const r = await kvmsh(["-c", "echo a", "echo", "b"]);
  assert.equal(r.code, 2);
  assert.equal(r.stdout, "");
  assert.match(r.stderr, /^kvmsh: -c and a command \(echo …\) together: give one$/m);
});
