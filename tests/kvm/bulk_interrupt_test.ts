/**
 * A bulk fill of gigabytes takes seconds here (faulting the pages in); a Ctrl-C the shell holds
 * (the prompt's per-line hold) stops it at the next 64 MiB slice with InterruptedError, instead
 * of the prompt waiting for the whole fill.
 */

import { deepStrictEqual as eq, ok, throws } from "node:assert/strict";
import { holdSigint, InterruptedError, Mapping } from "../../mod.ts";
import { kvmTest } from "../kvm_env.ts";

kvmTest("an 8 GiB fill under a SIGINT hold stops at the next slice with InterruptedError", async () => {
  const size = 8n << 30n;
  const m = Mapping.anonymous(size);
  const h = holdSigint();
  try {
    // The signal comes from another process while this thread is inside the fill.
    const killer = new Deno.Command("sh", { args: ["-c", `sleep 0.3; kill -INT ${Deno.pid}`] }).spawn();
    const t0 = performance.now();
    throws(() => m.fill(0n, size, 1), (e: unknown) => {
      ok(e instanceof InterruptedError, String(e));
      ok(
        /^interrupted \(SIGINT\) populate for writing: after 0x[0-9a-f]+ of 0x200000000 bytes$/.test(e.message),
        e.message,
      );
      return true;
    });
    const ms = performance.now() - t0;
    eq((await killer.status).code, 0);
    eq(h.count(), 1, "the hold counted the SIGINT");
    ok(ms < 5000, `stopped after ${ms.toFixed(0)} ms (the whole fill takes ~20 s here)`);
  } finally {
    h.release();
    m.unmap();
  }
});
