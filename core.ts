/**
 * kvmsh's public core API: KVM objects (Kvm, Vm, Vcpu, GuestMemfd, Memslot, Mapping), errors,
 * the ABI names, the exit loop, guest loaders and runGuest: everything in `mod.ts` but the
 * scenario runner, its expectations and the kernel-log reader. `mod.ts` re-exports all of it;
 * scripts and scenarios import `mod.ts`.
 *
 * The shell imports this module instead of `mod.ts` so a `kvmsh -c …` process does not load
 * `scenario/` (~5 ms of start-up); it loads `mod.ts` on first use of `scenario` or `record`.
 * @module
 */

import { Kvm, kvmDevicePath } from "./kvm/kvm.ts";

export { Kvm, KVM_DEVICE, kvmDevicePath } from "./kvm/kvm.ts";
export { MemslotRestoreError, Vm } from "./kvm/vm.ts";
export type { AttributeRecord, GpaTarget, VmChild } from "./kvm/vm.ts";
export { GuestMemfd } from "./kvm/guest_memfd.ts";
export type { GmemMmapOptions, GmemStat } from "./kvm/guest_memfd.ts";
export type { TouchMode, TouchResult } from "./kvm/child_touch.ts";
export { Memslot } from "./kvm/memslot.ts";
export type { MemoryRegion2, MemslotSpec, UserspaceChoice } from "./kvm/memslot.ts";
export { Mapping, MemoryFaultError, parseProt } from "./kvm/mapping.ts";
export type { MappingInfo } from "./kvm/mapping.ts";
export { ClosedError, InterruptedError, InUseError, isErrno, KvmError, MainMemoryError } from "./kvm/errors.ts";
export { faultArgs, faultCause, hintFor, kvmOpenHint } from "./kvm/hints.ts";
export type { FaultCause, FaultedMapping } from "./kvm/hints.ts";
export { formatSize, hex, humanSize, parseU64 } from "./kvm/units.ts";
export { hostReport, kernelRelease, moduleInfo, VENDOR_MODULES, vendorModules } from "./kvm/host.ts";
export type { CapReport, HostReport, ModuleInfo } from "./kvm/host.ts";
/** Host files (guest images): what a path names, and a regular file's bytes, through open/fstat/read. */
export { hostFile, readHostFile } from "./kvm/host_file.ts";
export type { HostFileInfo } from "./kvm/host_file.ts";
/** ABI names, defined once in ffi/: caps, ioctls, flags, VM types, exit reasons, errno (kvm/abi.ts lists them). */
export * from "./kvm/abi.ts";

// vCPUs and guests: Vcpu (vm.createVcpu), the exit loop (runVcpu), the one-call runGuest, loaders, guest ABI.
/** A vCPU (`vm.createVcpu()`): regs, sregs, fpu, CPUID, MP state, guest debug, one KVM_RUN (`run`). */
export { REG_NAMES, supportedCpuid, Vcpu } from "./kvm/vcpu.ts";
export type {
  CpuidEntry,
  Dtable,
  Fpu,
  GuestDebugOptions,
  Regs,
  Segment,
  SegmentName,
  Sregs,
  SregsUpdate,
  Translation,
} from "./kvm/vcpu.ts";
/** The current exit, decoded in place from kvm_run (`vcpu.exit`). */
export { ExitView } from "./kvm/exit_view.ts";
/** The current exit as a plain object / one line / JSON. */
export { describeExit, exitToJSON, formatExit } from "./kvm/exit_decode.ts";
export type { ExitInfo } from "./kvm/exit_decode.ts";
/** The exit loop: runVcpu(vcpu, {handlers, timeoutMs, deadline, interruptible, abi}); stepVcpu single-steps; codeAt finds the next instruction. */
export { codeAt, CONTINUE, nowMs, runVcpu, setScenarioDeadline, stepVcpu, STOP, vcpuGuestAbi } from "./kvm/run_loop.ts";
export type {
  CodeAt,
  ExitHandler,
  ExitHandlers,
  RunOptions as VcpuRunOptions,
  RunResult as VcpuRunResult,
  StepOptions,
  StepRecord,
  StepResult,
  StopReason,
  Verdict,
} from "./kvm/run_loop.ts";
/** Load and run a guest in one call (flat binary, ELF64 or inline asm; anon or gmem memory). */
export { guestMemoryFlags, mainMemory, ownMemory, PD_SLOT_GPA, runGuest } from "./kvm/run_guest.ts";
export type { GuestMemory, GuestResult, GuestSpec } from "./kvm/run_guest.ts";
/** The guest ABI: console 0xE9, COM1, isa-debug-exit 0xF4, ucall port, MAP_GPA_RANGE. */
export { GuestAbi, PORT, UCALL_CMD } from "./kvm/guest_abi.ts";
export type { Conversion, ExitCode, Ucall, UcallName } from "./kvm/guest_abi.ts";
/** Loaders: real mode (kvmtool layout), long mode (identity page tables over the low 512 GiB and every memslot), ELF64. */
export { loadRealMode, REAL_MODE_DEFAULTS } from "./kvm/loaders/real_mode.ts";
export type { LoadInfo, RealModeOptions } from "./kvm/loaders/real_mode.ts";
export {
  ARG_REGS,
  buildPageTables,
  identityPageDirectories,
  loadLongModeFlat,
  LONG_MODE_LAYOUT,
  PD_AREA_SIZE,
  setupLongMode,
  vcpuHas1g,
} from "./kvm/loaders/long_mode.ts";
export type { GpaRange, LongModeOptions, LowMap, PageTableInfo } from "./kvm/loaders/long_mode.ts";
export { isElf, loadElf, parseElf } from "./kvm/loaders/elf.ts";
export type { ElfImage, ElfSegment } from "./kvm/loaders/elf.ts";
/** The guest library (scripts/guests/bin) by name. */
export { GUEST_LIBRARY, guestPath } from "./kvm/loaders/library.ts";
export type { GuestName } from "./kvm/loaders/library.ts";
/** Inline assembly (GNU as/ld), cached by content hash. */
export { asmCacheDir, assemble } from "./kvm/asm.ts";
export type { AsmOptions } from "./kvm/asm.ts";
/**
 * Stopping a running guest (timeout, deadline, Ctrl-C kick; no Worker): counters, the old watchdog
 * API, and holdSigint (SIGINT counted and kept over synchronous work, e.g. a shell command).
 */
export { holdSigint, kickStats, stopWatchdog, watchdogKicks, watchdogRunning } from "./kvm/kick.ts";
export type { KickStats, SigintHold, StopCause } from "./kvm/kick.ts";

/**
 * Opens the KVM device: `path`, else `$KVMSH_DEVICE` when set, else `/dev/kvm` (as the shell and
 * scenarios do: {@link kvmDevicePath}). Throws a KvmError with a fix-it hint when KVM is missing
 * or not permitted.
 */
export function openKvm(path: string = kvmDevicePath()): Kvm {
  return Kvm.open(path);
}
