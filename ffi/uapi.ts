/**
 * KVM's userspace ABI constants (x86_64, Linux 7.2 uapi): ioctl request numbers, flags,
 * VM types, exit reasons. Each is defined once here; names for display come from the same
 * tables, so help text, output and recordings can never disagree with what is sent.
 * @module
 */

import { io, ior, iow, iowr } from "./ioctl_encoding.ts";
import { FlagSet } from "./flags.ts";
import { byName } from "./name_table.ts";
import { ERRNO } from "./errno.ts";
import {
  KVM_CPUID2,
  KVM_CREATE_GUEST_MEMFD_ARGS,
  KVM_DIRTY_LOG,
  KVM_ENABLE_CAP_ARGS,
  KVM_FPU,
  KVM_GUEST_DEBUG,
  KVM_MEMORY_ATTRIBUTES_ARGS,
  KVM_MP_STATE_ARGS,
  KVM_MSR_LIST,
  KVM_MSRS,
  KVM_PRE_FAULT_MEMORY_ARGS,
  KVM_REGS,
  KVM_SREGS,
  KVM_TRANSLATION,
  KVM_USERSPACE_MEMORY_REGION,
  KVM_USERSPACE_MEMORY_REGION2,
} from "./structs.ts";

/** The ioctl type byte of KVM (`KVMIO`). */
export const KVMIO = 0xae;
/** The API version every KVM since 2.6.22 answers. */
export const KVM_API_VERSION = 12;

/** Every ioctl kvmsh sends, by its kernel name. */
export const IOCTL = Object.freeze({
  // /dev/kvm
  KVM_GET_API_VERSION: io(KVMIO, 0x00),
  KVM_CREATE_VM: io(KVMIO, 0x01),
  KVM_GET_MSR_INDEX_LIST: iowr(KVMIO, 0x02, KVM_MSR_LIST.size),
  KVM_CHECK_EXTENSION: io(KVMIO, 0x03),
  KVM_GET_VCPU_MMAP_SIZE: io(KVMIO, 0x04),
  KVM_GET_SUPPORTED_CPUID: iowr(KVMIO, 0x05, KVM_CPUID2.size),
  // VM
  KVM_CREATE_VCPU: io(KVMIO, 0x41),
  KVM_GET_DIRTY_LOG: iow(KVMIO, 0x42, KVM_DIRTY_LOG.size),
  KVM_SET_USER_MEMORY_REGION: iow(KVMIO, 0x46, KVM_USERSPACE_MEMORY_REGION.size),
  KVM_SET_TSS_ADDR: io(KVMIO, 0x47),
  KVM_SET_IDENTITY_MAP_ADDR: iow(KVMIO, 0x48, 8),
  KVM_SET_USER_MEMORY_REGION2: iow(KVMIO, 0x49, KVM_USERSPACE_MEMORY_REGION2.size),
  KVM_CREATE_IRQCHIP: io(KVMIO, 0x60),
  KVM_ENABLE_CAP: iow(KVMIO, 0xa3, KVM_ENABLE_CAP_ARGS.size),
  KVM_SET_MEMORY_ATTRIBUTES: iow(KVMIO, 0xd2, KVM_MEMORY_ATTRIBUTES_ARGS.size),
  KVM_CREATE_GUEST_MEMFD: iowr(KVMIO, 0xd4, KVM_CREATE_GUEST_MEMFD_ARGS.size),
  // vCPU
  KVM_RUN: io(KVMIO, 0x80),
  KVM_GET_REGS: ior(KVMIO, 0x81, KVM_REGS.size),
  KVM_SET_REGS: iow(KVMIO, 0x82, KVM_REGS.size),
  KVM_GET_SREGS: ior(KVMIO, 0x83, KVM_SREGS.size),
  KVM_SET_SREGS: iow(KVMIO, 0x84, KVM_SREGS.size),
  KVM_TRANSLATE: iowr(KVMIO, 0x85, KVM_TRANSLATION.size),
  KVM_GET_MSRS: iowr(KVMIO, 0x88, KVM_MSRS.size),
  KVM_SET_MSRS: iow(KVMIO, 0x89, KVM_MSRS.size),
  KVM_GET_FPU: ior(KVMIO, 0x8c, KVM_FPU.size),
  KVM_SET_FPU: iow(KVMIO, 0x8d, KVM_FPU.size),
  KVM_SET_CPUID2: iow(KVMIO, 0x90, KVM_CPUID2.size),
  KVM_GET_CPUID2: iowr(KVMIO, 0x91, KVM_CPUID2.size),
  KVM_GET_MP_STATE: ior(KVMIO, 0x98, KVM_MP_STATE_ARGS.size),
  KVM_SET_MP_STATE: iow(KVMIO, 0x99, KVM_MP_STATE_ARGS.size),
  KVM_SET_GUEST_DEBUG: iow(KVMIO, 0x9b, KVM_GUEST_DEBUG.size),
  KVM_PRE_FAULT_MEMORY: iowr(KVMIO, 0xd5, KVM_PRE_FAULT_MEMORY_ARGS.size),
});

/** An ioctl's kernel name. */
export type IoctlName = keyof typeof IOCTL;

let byNumber: Map<number, string> | undefined;

/** The kernel name of a request number, or its hex value. */
export function ioctlName(req: number): string {
  // Built on first use (error messages): not at every start.
  byNumber ??= new Map<number, string>(Object.entries(IOCTL).map(([k, v]) => [v, k]));
  return byNumber.get(req) ?? `ioctl 0x${req.toString(16)}`;
}

/** KVM_CREATE_GUEST_MEMFD flags (`GUEST_MEMFD_FLAG_*`). */
export const GUEST_MEMFD_FLAGS = new FlagSet("gmem", {
  mmap: 1n << 0n,
  "init-shared": 1n << 1n,
});

/** Memslot flags (`KVM_MEM_*`). */
export const MEMSLOT_FLAGS = new FlagSet("memslot", {
  "log-dirty": 1n << 0n,
  readonly: 1n << 1n,
  "guest-memfd": 1n << 2n,
}, 32); // a u32 in kvm_userspace_memory_region(2)

/** Memory attributes (`KVM_MEMORY_ATTRIBUTE_*`). */
export const MEMORY_ATTRIBUTES = new FlagSet("attribute", {
  private: 1n << 3n,
});

/** KVM_EXIT_MEMORY_FAULT flags (`KVM_MEMORY_EXIT_FLAG_*`). */
export const MEMORY_EXIT_FLAGS = new FlagSet("memory-fault", {
  private: 1n << 3n,
});

/** x86 VM types for KVM_CREATE_VM (`KVM_X86_*_VM`), by kvmsh name. */
export const VM_TYPES: Readonly<Record<string, number>> = Object.freeze({
  default: 0,
  "sw-protected": 1,
  sev: 2,
  "sev-es": 3,
  snp: 4,
  tdx: 5,
});

/** KVM_CAP_VM_TYPES answers a bit mask with bit N set for VM type N. */
export const VM_TYPE_BITS = new FlagSet(
  "vm-type",
  Object.fromEntries(Object.entries(VM_TYPES).map(([k, v]) => [k, 1n << BigInt(v)])),
);

/** The name of a VM type number, or `type <n>`. */
export function vmTypeName(t: number): string {
  return Object.entries(VM_TYPES).find(([, v]) => v === t)?.[0] ?? `type ${t}`;
}

/** `fallocate` mode bits kvmsh uses. */
export const FALLOC = Object.freeze({
  KEEP_SIZE: 0x01,
  PUNCH_HOLE: 0x02,
});

/** KVM exit reasons (`KVM_EXIT_*`), number → name without the prefix. */
export const EXIT_REASON_NAMES: Readonly<Record<number, string>> = Object.freeze({
  0: "UNKNOWN",
  1: "EXCEPTION",
  2: "IO",
  3: "HYPERCALL",
  4: "DEBUG",
  5: "HLT",
  6: "MMIO",
  7: "IRQ_WINDOW_OPEN",
  8: "SHUTDOWN",
  9: "FAIL_ENTRY",
  10: "INTR",
  11: "SET_TPR",
  12: "TPR_ACCESS",
  13: "S390_SIEIC",
  14: "S390_RESET",
  15: "DCR",
  16: "NMI",
  17: "INTERNAL_ERROR",
  18: "OSI",
  19: "PAPR_HCALL",
  20: "S390_UCONTROL",
  21: "WATCHDOG",
  22: "S390_TSCH",
  23: "EPR",
  24: "SYSTEM_EVENT",
  25: "S390_STSI",
  26: "IOAPIC_EOI",
  27: "HYPERV",
  28: "ARM_NISV",
  29: "X86_RDMSR",
  30: "X86_WRMSR",
  31: "DIRTY_RING_FULL",
  32: "AP_RESET_HOLD",
  33: "X86_BUS_LOCK",
  34: "XEN",
  35: "RISCV_SBI",
  36: "RISCV_CSR",
  37: "NOTIFY",
  38: "LOONGARCH_IOCSR",
  39: "MEMORY_FAULT",
  40: "TDX",
  41: "ARM_SEA",
  42: "ARM_LDST64B",
  43: "SNP_REQ_CERTS",
});

/** Exit reason name → number (`EXIT.HLT === 5`). */
export const EXIT: Readonly<Record<string, number>> = byName(EXIT_REASON_NAMES);

/** The name of an exit reason, or `#<n>`. */
export function exitReasonName(n: number): string {
  return EXIT_REASON_NAMES[n] ?? `#${n}`;
}

/** KVM_EXIT_INTERNAL_ERROR suberrors. */
export const INTERNAL_ERROR_NAMES: Readonly<Record<number, string>> = Object.freeze({
  1: "EMULATION",
  2: "SIMUL_EX",
  3: "DELIVERY_EV",
  4: "UNEXPECTED_EXIT_REASON",
});

/** KVM_EXIT_SYSTEM_EVENT types. */
export const SYSTEM_EVENT_NAMES: Readonly<Record<number, string>> = Object.freeze({
  1: "SHUTDOWN",
  2: "RESET",
  3: "CRASH",
  4: "WAKEUP",
  5: "SUSPEND",
  6: "SEV_TERM",
  7: "TDX_FATAL",
});

/** KVM_EXIT_IO directions. */
export const IO_DIRECTION = Object.freeze({ IN: 0, OUT: 1 });

/** vCPU MP states (`KVM_MP_STATE_*`). */
export const MP_STATE_NAMES: Readonly<Record<number, string>> = Object.freeze({
  0: "RUNNABLE",
  1: "UNINITIALIZED",
  2: "INIT_RECEIVED",
  3: "HALTED",
  4: "SIPI_RECEIVED",
  5: "STOPPED",
  6: "CHECK_STOP",
  7: "OPERATING",
  8: "LOAD",
  9: "AP_RESET_HOLD",
  10: "SUSPENDED",
});

/** KVM_HC_MAP_GPA_RANGE attribute bits (`KVM_MAP_GPA_RANGE_*`, asm/kvm_para.h), as args[2] of the hypercall. */
export const MAP_GPA_RANGE_FLAGS = new FlagSet("map-gpa-range", {
  "page-2m": 1n << 0n,
  "page-1g": 1n << 1n,
  encrypted: 1n << 4n,
});

/** Error numbers KVM returns to a guest in RAX from a hypercall (`KVM_E*`, linux/kvm_para.h). */
export const KVM_HC_ERRNO = Object.freeze({
  EFAULT: ERRNO.EFAULT,
  EINVAL: ERRNO.EINVAL,
  E2BIG: ERRNO.E2BIG,
  EPERM: ERRNO.EPERM,
  EOPNOTSUPP: ERRNO.EOPNOTSUPP,
  ENOSYS: 1000, // KVM_ENOSYS: the hypercall ABI's own, not the kernel's ENOSYS (38)
});

/** KVM_EXIT_HYPERCALL flags: the guest was in long mode (`KVM_EXIT_HYPERCALL_LONG_MODE`). */
export const KVM_EXIT_HYPERCALL_LONG_MODE = 1n << 0n;

/** KVM_SET_GUEST_DEBUG control bits. */
export const GUESTDBG = Object.freeze({
  ENABLE: 0x1,
  SINGLESTEP: 0x2,
  USE_SW_BP: 0x10000,
  USE_HW_BP: 0x20000,
  INJECT_DB: 0x40000,
  INJECT_BP: 0x80000,
});
