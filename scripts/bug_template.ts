/**
 * A template for a new KVM bug report. Copy it, fill in the TODOs, run it, paste the output.
 *
 *   cp scripts/bug_template.ts my_bug.ts        # or start from a REPL recording: record start my_bug.ts
 *   ./kvmsh scenario my_bug.ts                  # KTAP on stdout; exit 0 pass, 1 fail, 4 skip
 *   ./kvmsh scenario --json=my_bug.json my_bug.ts
 *   git bisect run /path/to/kvmsh scenario --bisect my_bug.ts   # skip → 125
 *
 * What to fill in:
 * 1. `requires`: what the bug needs (a cap, gmem flags, a VM type, a kernel version, a vendor
 *    module). A host without it skips with the reason instead of reporting a false failure.
 * 2. The steps that reach the bug, each an expectation of the CORRECT behaviour (what the ABI
 *    or documentation promises): on a buggy kernel the line reads `not ok … # <what it did>`.
 * 3. If the kernel is expected to log something (a deliberate WARN), `expectKernelLog(/…/)`;
 *    otherwise any WARN/BUG/Oops/lockdep splat during the scenario fails it on its own.
 *
 * What to paste in the report: the whole KTAP output (it starts with the kernel release, vendor
 * module and parameters, KVM API version, and a default VM's guest_memfd and memory-attribute
 * caps; each scenario lists the caps it read and every kernel log record printed while it ran),
 * and this file.
 * @module
 */

import { expectErrno, expectOk, hex, requires, scenario, step } from "../mod.ts";

scenario("TODO: one line that states the correct behaviour", async (t) => {
  // TODO: what the bug needs; remove what does not apply. (gmemFlags asks for KVM_CAP_GUEST_MEMFD
  // too: a host without guest_memfd skips with "KVM_CAP_GUEST_MEMFD is 0".)
  requires({ gmemFlags: "mmap" });
  // requires({ kernel: "6.18" }, { module: ["kvm_intel", "kvm_amd"] }, { vmType: "sw-protected" });

  const vm = t.vm(); // closed with /dev/kvm when the scenario ends, whatever happened
  t.defer(() => t.note("cleanup runs last, even after a failure"), "example cleanup");

  await step("set up", () => {
    // TODO: the state the bug needs. expectOk returns what the call returned.
    const gmem = expectOk(() => vm.createGuestMemfd(0x200000n, "mmap"), "a 2 MiB mmap-able guest_memfd");
    t.note(`gmem fd ${gmem.fd}, size ${hex(gmem.size)}`);
  });

  await step("trigger", () => {
    // TODO: the call the kernel answers wrongly, written as the answer it should give.
    expectErrno("EINVAL", () => vm.createGuestMemfd(0x1001n), "an unaligned size is refused with EINVAL");
  });
});
