/**
 * Numbers at the prompt: a negative number anywhere is a clear syntax error (nothing is sent);
 * `gmem mmap --offset` at or past the end without `--length` maps one page, says so, and shows
 * what the kernel answers for a mapping past EOF. Where KVM cannot make the guest_memfd, the
 * lines that look its name up before their number (gmem punch, gmem mmap) are left out and the
 * rest run over an anonymous slot; the mmap case is skipped with the reason.
 * @module
 */

import assert from "node:assert/strict";
import { GMEM_MMAP_SKIP_REASON, gmemTest, kvmTest } from "../kvm_env.ts";
import { runC } from "./helpers.ts";
import { num, small } from "../../shell/values.ts";
import { parseTimeout } from "../../shell/commands/vcpu_ref.ts";
import { UsageError } from "../../shell/usage_error.ts";

Deno.test("values: negative numbers are refused with a clear message", () => {
  for (const f of [() => num("-1", "--size"), () => small("-0x10", "--id"), () => parseTimeout("-1s")]) {
    assert.throws(f, (e: unknown) => e instanceof UsageError && /is negative/.test(e.message));
  }
  assert.throws(() => num("-1", "--size"), {
    message: "--size: '-1' is negative; numbers here are unsigned (4096, 0x1000, 4K, 2M, 1G)",
  });
});

kvmTest("values: a negative number anywhere is a usage error (2) and nothing is sent", async () => {
  // With a guest_memfd where KVM makes one (gmem punch/mmap look gmem0 up before the number); else anonymous memory.
  const gmem = GMEM_MMAP_SKIP_REASON === undefined;
  const G = gmem
    ? ["vm create", "gmem create --size 2M --flags mmap,init-shared"]
    : ["vm create", "slot set 0 --gpa 0 --size 2M --anon"];
  for (
    const line of [
      "gmem create --size -1",
      ...(gmem ? ["gmem punch gmem0 -1 4K", "gmem mmap gmem0 --offset -4K"] : []),
      "x/4xb -4096",
      "write gmem0:-1 0xaa",
      "vcpu create --id -1",
      "run --asm hlt --arg -1",
      "run --asm hlt --timeout -1s",
      "slot set 1 --gpa -4G --size 2M",
      "exit -1",
      // Every host: the other places a number goes.
      "write -4096 0xaa",
      "write 0x1000 -1",
      "slot set 1 --gpa 4G --size -2M --anon",
      "slot del -1",
      "attr set private -4K 4K",
      "regs set rax=-1",
      "step -1",
    ]
  ) {
    const r = await runC([...G, line, "echo not reached"]);
    assert.equal(r.code, 2, `${line}: ${r.stderr}`);
    assert.match(r.stderr, /^error: .*is negative/m, line);
    assert.doesNotMatch(r.stdout, /not reached|stop:/, line);
  }
});

gmemTest("gmem mmap --offset at or past the end, no --length: one page is sent, with a warning", async () => {
  const r = await runC(["vm create", "gmem create --size 2M --flags mmap,init-shared", "gmem mmap gmem0 --offset 4M"]);
  assert.match(
    r.stderr,
    /^warning: --offset 0x400000 is at or past the end of gmem0 \(size 0x200000\) and no --length: mapping one page \(0x1000\) to show the kernel's answer$/m,
  );
  assert.doesNotMatch(r.stderr, /0x-/, "no negative length is sent");
  // What this kernel answers for a mapping past EOF (6.18: the mmap succeeds; an access would SIGBUS).
  if (r.code === 0) assert.match(r.stdout, /^map0: 0x[0-9a-f]+ size 0x1000 \(4 KiB\) of gmem0 at offset 0x400000/m);
  else assert.match(r.stderr, /^error: mmap: E[A-Z]+ .*length=0x1000/m);
  const at = await runC(["vm create", "gmem create --size 2M --flags mmap,init-shared", "gmem mmap gmem0 --offset 2M"]);
  assert.match(at.stderr, /^warning: --offset 0x200000 is at or past the end/m);
  const inside = await runC([
    "vm create",
    "gmem create --size 2M --flags mmap,init-shared",
    "gmem mmap gmem0 --offset 1M",
  ]);
  assert.equal(inside.stderr, "");
  assert.match(inside.stdout, /size 0x100000 \(1 MiB\) of gmem0 at offset 0x100000/);
}, "mmap,init-shared");
