/**
 * kvmsh's public API: the same verbs as the REPL, for scenarios and scripts.
 *
 * ```ts
 * import { openKvm } from "./mod.ts";
 * using kvm = openKvm();
 * using vm = kvm.createVm();
 * const gmem = vm.createGuestMemfd(2n << 20n, "mmap,init-shared");
 * gmem.fillMem(0n, 4096n, 0xaa);
 * ```
 *
 * Two entry points, both public API: `mod.ts` (this file: everything) and `core.ts` (the KVM
 * objects, ABI names, exit loop, loaders and runGuest: all of this file but the scenario runner,
 * its expectations and the kernel-log reader). The shell imports `core.ts` so that a short
 * `kvmsh -c …` process does not load `scenario/`; scripts and scenarios import `mod.ts`.
 * @module
 */

/** The core API (core.ts): KVM objects, errors, ABI names, vCPUs, the exit loop, loaders, runGuest, openKvm. */
export * from "./core.ts";

// Scenarios: kernel bug reproductions with KTAP results (scenario/).
export { scenario } from "./scenario/registry.ts";
export type { ScenarioEntry, ScenarioOptions } from "./scenario/registry.ts";
export { ScenarioContext } from "./scenario/context.ts";
export {
  bytesDiffer,
  expectAccess,
  expectBytes,
  expectEqual,
  expectErrno,
  expectError,
  expectExit,
  expectFault,
  expectGuestBytes,
  expectGuestResult,
  expectOk,
  expectSigbus,
  expectTrue,
} from "./scenario/expect.ts";
export type { ExitExpectation, GuestResultExpectation, GuestRunOutcome, UcallExpectation } from "./scenario/expect.ts";
export { defer, expectKernelLog, note, skip, step, xfail } from "./scenario/steps.ts";
export { hostHas, releaseAtLeast, requires } from "./scenario/requires.ts";
export type { Requirement } from "./scenario/requires.ts";
export { GUEST_VERIFY_THEN_FILL } from "./scenario/guest_code.ts";
export { FakeKernelLog, KmsgReader, parseKmsgRecord, splatKind } from "./kvm/kmsg.ts";
export type { KernelLogSource, KmsgRecord } from "./kvm/kmsg.ts";
export type { FileReport, ResultLine, ScenarioReport, Status, Totals } from "./scenario/result.ts";
export { hostInfo, jsonReport, runScenarioCli, runScenarioSources } from "./scenario/cli.ts";
export type { HostInfo, RunOptions, RunResult } from "./scenario/cli.ts";
