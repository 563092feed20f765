/**
 * KVM capability numbers (KVM_CAP_*), pinned to the uapi headers of upstream Linux 7.2
 * (include/uapi/linux/kvm.h). Numbers above 244 are where upstream and out-of-tree series
 * (Firecracker's, the in-place conversion series) disagree: a kernel with such a series may
 * answer a different meaning under the same number. Any number can still be probed raw.
 * Bit-mask valued caps are decoded by name through {@link CAP_VALUE_FLAGS}.
 * @module
 */

import { FlagSet } from "./flags.ts";
import { byName } from "./name_table.ts";
import { GUEST_MEMFD_FLAGS, MEMORY_ATTRIBUTES, VM_TYPE_BITS } from "./uapi.ts";

/** The uapi version the capability names are pinned to. */
export const CAPS_UAPI_VERSION = "Linux 7.2";

/** Capability number → name without the KVM_CAP_ prefix. */
export const CAP_NAMES: Readonly<Record<number, string>> = {
  0: "IRQCHIP",
  1: "HLT",
  2: "MMU_SHADOW_CACHE_CONTROL",
  3: "USER_MEMORY",
  4: "SET_TSS_ADDR",
  6: "VAPIC",
  7: "EXT_CPUID",
  8: "CLOCKSOURCE",
  9: "NR_VCPUS",
  10: "NR_MEMSLOTS",
  11: "PIT",
  12: "NOP_IO_DELAY",
  13: "PV_MMU",
  14: "MP_STATE",
  15: "COALESCED_MMIO",
  16: "SYNC_MMU",
  18: "IOMMU",
  21: "DESTROY_MEMORY_REGION_WORKS",
  22: "USER_NMI",
  23: "SET_GUEST_DEBUG",
  24: "REINJECT_CONTROL",
  25: "IRQ_ROUTING",
  26: "IRQ_INJECT_STATUS",
  29: "ASSIGN_DEV_IRQ",
  30: "JOIN_MEMORY_REGIONS_WORKS",
  31: "MCE",
  32: "IRQFD",
  33: "PIT2",
  34: "SET_BOOT_CPU_ID",
  35: "PIT_STATE2",
  36: "IOEVENTFD",
  37: "SET_IDENTITY_MAP_ADDR",
  38: "XEN_HVM",
  39: "ADJUST_CLOCK",
  40: "INTERNAL_ERROR_DATA",
  41: "VCPU_EVENTS",
  42: "S390_PSW",
  43: "PPC_SEGSTATE",
  44: "HYPERV",
  45: "HYPERV_VAPIC",
  46: "HYPERV_SPIN",
  47: "PCI_SEGMENT",
  48: "PPC_PAIRED_SINGLES",
  49: "INTR_SHADOW",
  50: "DEBUGREGS",
  51: "X86_ROBUST_SINGLESTEP",
  52: "PPC_OSI",
  53: "PPC_UNSET_IRQ",
  54: "ENABLE_CAP",
  55: "XSAVE",
  56: "XCRS",
  57: "PPC_GET_PVINFO",
  58: "PPC_IRQ_LEVEL",
  59: "ASYNC_PF",
  60: "TSC_CONTROL",
  61: "GET_TSC_KHZ",
  62: "PPC_BOOKE_SREGS",
  63: "SPAPR_TCE",
  64: "PPC_SMT",
  65: "PPC_RMA",
  66: "MAX_VCPUS",
  67: "PPC_HIOR",
  68: "PPC_PAPR",
  69: "SW_TLB",
  70: "ONE_REG",
  71: "S390_GMAP",
  72: "TSC_DEADLINE_TIMER",
  73: "S390_UCONTROL",
  74: "SYNC_REGS",
  75: "PCI_2_3",
  76: "KVMCLOCK_CTRL",
  77: "SIGNAL_MSI",
  78: "PPC_GET_SMMU_INFO",
  79: "S390_COW",
  80: "PPC_ALLOC_HTAB",
  81: "READONLY_MEM",
  82: "IRQFD_RESAMPLE",
  83: "PPC_BOOKE_WATCHDOG",
  84: "PPC_HTAB_FD",
  85: "S390_CSS_SUPPORT",
  86: "PPC_EPR",
  87: "ARM_PSCI",
  88: "ARM_SET_DEVICE_ADDR",
  89: "DEVICE_CTRL",
  90: "IRQ_MPIC",
  91: "PPC_RTAS",
  92: "IRQ_XICS",
  93: "ARM_EL1_32BIT",
  94: "SPAPR_MULTITCE",
  95: "EXT_EMUL_CPUID",
  96: "HYPERV_TIME",
  97: "IOAPIC_POLARITY_IGNORED",
  98: "ENABLE_CAP_VM",
  99: "S390_IRQCHIP",
  100: "IOEVENTFD_NO_LENGTH",
  101: "VM_ATTRIBUTES",
  102: "ARM_PSCI_0_2",
  103: "PPC_FIXUP_HCALL",
  104: "PPC_ENABLE_HCALL",
  105: "CHECK_EXTENSION_VM",
  106: "S390_USER_SIGP",
  107: "S390_VECTOR_REGISTERS",
  108: "S390_MEM_OP",
  109: "S390_USER_STSI",
  110: "S390_SKEYS",
  111: "MIPS_FPU",
  112: "MIPS_MSA",
  113: "S390_INJECT_IRQ",
  114: "S390_IRQ_STATE",
  115: "PPC_HWRNG",
  116: "DISABLE_QUIRKS",
  117: "X86_SMM",
  118: "MULTI_ADDRESS_SPACE",
  119: "GUEST_DEBUG_HW_BPS",
  120: "GUEST_DEBUG_HW_WPS",
  121: "SPLIT_IRQCHIP",
  122: "IOEVENTFD_ANY_LENGTH",
  123: "HYPERV_SYNIC",
  124: "S390_RI",
  125: "SPAPR_TCE_64",
  126: "ARM_PMU_V3",
  127: "VCPU_ATTRIBUTES",
  128: "MAX_VCPU_ID",
  129: "X2APIC_API",
  130: "S390_USER_INSTR0",
  131: "MSI_DEVID",
  132: "PPC_HTM",
  133: "SPAPR_RESIZE_HPT",
  134: "PPC_MMU_RADIX",
  135: "PPC_MMU_HASH_V3",
  136: "IMMEDIATE_EXIT",
  137: "MIPS_VZ",
  138: "MIPS_TE",
  139: "MIPS_64BIT",
  140: "S390_GS",
  141: "S390_AIS",
  142: "SPAPR_TCE_VFIO",
  143: "X86_DISABLE_EXITS",
  144: "ARM_USER_IRQ",
  145: "S390_CMMA_MIGRATION",
  146: "PPC_FWNMI",
  147: "PPC_SMT_POSSIBLE",
  148: "HYPERV_SYNIC2",
  149: "HYPERV_VP_INDEX",
  150: "S390_AIS_MIGRATION",
  151: "PPC_GET_CPU_CHAR",
  152: "S390_BPB",
  153: "GET_MSR_FEATURES",
  154: "HYPERV_EVENTFD",
  155: "HYPERV_TLBFLUSH",
  156: "S390_HPAGE_1M",
  157: "NESTED_STATE",
  158: "ARM_INJECT_SERROR_ESR",
  159: "MSR_PLATFORM_INFO",
  160: "PPC_NESTED_HV",
  161: "HYPERV_SEND_IPI",
  162: "COALESCED_PIO",
  163: "HYPERV_ENLIGHTENED_VMCS",
  164: "EXCEPTION_PAYLOAD",
  165: "ARM_VM_IPA_SIZE",
  166: "MANUAL_DIRTY_LOG_PROTECT",
  167: "HYPERV_CPUID",
  168: "MANUAL_DIRTY_LOG_PROTECT2",
  169: "PPC_IRQ_XIVE",
  170: "ARM_SVE",
  171: "ARM_PTRAUTH_ADDRESS",
  172: "ARM_PTRAUTH_GENERIC",
  173: "PMU_EVENT_FILTER",
  174: "ARM_IRQ_LINE_LAYOUT_2",
  175: "HYPERV_DIRECT_TLBFLUSH",
  176: "PPC_GUEST_DEBUG_SSTEP",
  177: "ARM_NISV_TO_USER",
  178: "ARM_INJECT_EXT_DABT",
  179: "S390_VCPU_RESETS",
  180: "S390_PROTECTED",
  181: "PPC_SECURE_GUEST",
  182: "HALT_POLL",
  183: "ASYNC_PF_INT",
  184: "LAST_CPU",
  185: "SMALLER_MAXPHYADDR",
  186: "S390_DIAG318",
  187: "STEAL_TIME",
  188: "X86_USER_SPACE_MSR",
  189: "X86_MSR_FILTER",
  190: "ENFORCE_PV_FEATURE_CPUID",
  191: "SYS_HYPERV_CPUID",
  192: "DIRTY_LOG_RING",
  193: "X86_BUS_LOCK_EXIT",
  194: "PPC_DAWR1",
  195: "SET_GUEST_DEBUG2",
  196: "SGX_ATTRIBUTE",
  197: "VM_COPY_ENC_CONTEXT_FROM",
  198: "PTP_KVM",
  199: "HYPERV_ENFORCE_CPUID",
  200: "SREGS2",
  201: "EXIT_HYPERCALL",
  202: "PPC_RPT_INVALIDATE",
  203: "BINARY_STATS_FD",
  204: "EXIT_ON_EMULATION_FAILURE",
  205: "ARM_MTE",
  206: "VM_MOVE_ENC_CONTEXT_FROM",
  207: "VM_GPA_BITS",
  208: "XSAVE2",
  209: "SYS_ATTRIBUTES",
  210: "PPC_AIL_MODE_3",
  211: "S390_MEM_OP_EXTENSION",
  212: "PMU_CAPABILITY",
  213: "DISABLE_QUIRKS2",
  214: "VM_TSC_CONTROL",
  215: "SYSTEM_EVENT_DATA",
  216: "ARM_SYSTEM_SUSPEND",
  217: "S390_PROTECTED_DUMP",
  218: "X86_TRIPLE_FAULT_EVENT",
  219: "X86_NOTIFY_VMEXIT",
  220: "VM_DISABLE_NX_HUGE_PAGES",
  221: "S390_ZPCI_OP",
  222: "S390_CPU_TOPOLOGY",
  223: "DIRTY_LOG_RING_ACQ_REL",
  224: "S390_PROTECTED_ASYNC_DISABLE",
  225: "DIRTY_LOG_RING_WITH_BITMAP",
  226: "PMU_EVENT_MASKED_EVENTS",
  227: "COUNTER_OFFSET",
  228: "ARM_EAGER_SPLIT_CHUNK_SIZE",
  229: "ARM_SUPPORTED_BLOCK_SIZES",
  230: "ARM_SUPPORTED_REG_MASK_RANGES",
  231: "USER_MEMORY2",
  232: "MEMORY_FAULT_INFO",
  233: "MEMORY_ATTRIBUTES",
  234: "GUEST_MEMFD",
  235: "VM_TYPES",
  236: "PRE_FAULT_MEMORY",
  237: "X86_APIC_BUS_CYCLES_NS",
  238: "X86_GUEST_MODE",
  239: "ARM_WRITABLE_IMP_ID_REGS",
  240: "ARM_EL2",
  241: "ARM_EL2_E2H0",
  242: "RISCV_MP_STATE_RESET",
  243: "ARM_CACHEABLE_PFNMAP_SUPPORTED",
  244: "GUEST_MEMFD_FLAGS",
  245: "ARM_SEA_TO_USER",
  246: "S390_USER_OPEREXEC",
  247: "S390_KEYOP",
  248: "S390_VSIE_ESAMODE",
  249: "S390_HPAGE_2G",
};

/** Capability name (with or without KVM_CAP_, any case) → number. */
export const CAP: Readonly<Record<string, number>> = byName(CAP_NAMES);

/** KVM_HC_MAP_GPA_RANGE, the hypercall a guest uses to ask for private/shared conversion. */
export const KVM_HC_MAP_GPA_RANGE = 12;

/** Caps whose value is a bit mask, and the names of their bits. */
export const CAP_VALUE_FLAGS: Readonly<Record<number, FlagSet>> = {
  [CAP.GUEST_MEMFD_FLAGS]: GUEST_MEMFD_FLAGS,
  [CAP.MEMORY_ATTRIBUTES]: MEMORY_ATTRIBUTES,
  [CAP.VM_TYPES]: VM_TYPE_BITS,
  [CAP.EXIT_HYPERCALL]: new FlagSet("hypercall", { "map-gpa-range": 1n << BigInt(KVM_HC_MAP_GPA_RANGE) }),
};

/** Caps a host report shows first: memory, guest_memfd, VM types, exits. */
export const REPORT_CAPS: readonly string[] = [
  "USER_MEMORY",
  "USER_MEMORY2",
  "NR_MEMSLOTS",
  "MULTI_ADDRESS_SPACE",
  "READONLY_MEM",
  "GUEST_MEMFD",
  "GUEST_MEMFD_FLAGS",
  "MEMORY_ATTRIBUTES",
  "MEMORY_FAULT_INFO",
  "PRE_FAULT_MEMORY",
  "VM_TYPES",
  "EXIT_HYPERCALL",
  "NR_VCPUS",
  "MAX_VCPUS",
  "MAX_VCPU_ID",
  "SET_GUEST_DEBUG",
  "IMMEDIATE_EXIT",
  "INTERNAL_ERROR_DATA",
  "EXT_CPUID",
  "X86_DISABLE_EXITS",
  "X86_USER_SPACE_MSR",
  "X86_GUEST_MODE",
];

/**
 * Resolves a capability given as a name (`GUEST_MEMFD_FLAGS`, `kvm_cap_guest_memfd_flags`,
 * `guest-memfd-flags`) or a number (`244`, `0xf4`). Returns undefined for an unknown name.
 */
export function resolveCap(text: string): number | undefined {
  const t = text.trim();
  if (/^(0x[0-9a-f]+|\d+)$/i.test(t)) return Number(t);
  const name = t.toUpperCase().replace(/-/g, "_").replace(/^KVM_CAP_/, "");
  return CAP[name];
}

/** `KVM_CAP_<NAME>` for a number, or `KVM_CAP_#<n>` when Linux 7.2 has no such cap. */
export function capName(n: number): string {
  const name = CAP_NAMES[n];
  return name ? `KVM_CAP_${name}` : `KVM_CAP_#${n}`;
}

/**
 * Why a guest_memfd cannot be had here, as KVM_CAP_GUEST_MEMFD tells it ({@link gmemAbsence}).
 * Every message that says so takes its words from here.
 */
export interface GmemAbsence {
  /**
   * `kernel`: /dev/kvm answers 0: the kernel is built without guest_memfd (the cap and
   * KVM_CREATE_GUEST_MEMFD come together: CONFIG_KVM_GUEST_MEMFD, before 6.18
   * CONFIG_KVM_PRIVATE_MEM), so the ioctl answers ENOTTY. `vm-type`: /dev/kvm answers ≥ 1 and the
   * VM 0: the kernel has guest_memfd, this VM type takes none (before 6.18 a VM answered whether
   * it has private memory: 0 for a default VM); KVM_CREATE_GUEST_MEMFD may succeed, a guest-memfd
   * slot of this VM is refused. `unknown`: only the VM's 0 is known: either of the two.
   */
  readonly kind: "kernel" | "vm-type" | "unknown";
  /** The finding, to follow the cap's value: `this kernel has no guest_memfd`. */
  readonly claim: string;
  /** The finding with the answers it rests on: `this kernel has no guest_memfd (KVM_CAP_GUEST_MEMFD=0)`. */
  readonly reason: string;
  /** The note after the value where a cap is decoded: `no guest_memfd: KVM_CREATE_GUEST_MEMFD will answer ENOTTY`. */
  readonly note: string;
}

/**
 * Decides from KVM_CAP_GUEST_MEMFD on the system fd (`system`) and on a VM (`vm`) whether
 * guest_memfd is missing, and how: only the system fd's 0 means the kernel has none (ENOTTY); a
 * VM's 0 beside a system ≥ 1 means this VM type takes none; a VM's 0 alone cannot tell which.
 * Undefined where guest_memfd is there (or nothing is known).
 */
export function gmemAbsence(caps: { system?: number; vm?: number }): GmemAbsence | undefined {
  const { system, vm } = caps;
  if (system === 0) {
    return {
      kind: "kernel",
      claim: "this kernel has no guest_memfd",
      reason: "this kernel has no guest_memfd (KVM_CAP_GUEST_MEMFD=0)",
      note: "no guest_memfd: KVM_CREATE_GUEST_MEMFD will answer ENOTTY",
    };
  }
  if (vm !== 0) return undefined;
  if (system !== undefined) {
    return {
      kind: "vm-type",
      claim: `this VM type takes no guest_memfd, though the kernel has it (KVM_CAP_GUEST_MEMFD=${system} on /dev/kvm)`,
      reason:
        `this VM type takes no guest_memfd, though the kernel has it (KVM_CAP_GUEST_MEMFD=0 on the VM, ${system} ` +
        "on /dev/kvm; a VM type with private memory — sw-protected, snp, tdx — takes one)",
      note: `not for this VM type: the kernel has guest_memfd (${system} on /dev/kvm), a guest-memfd slot of this VM ` +
        "type is refused",
    };
  }
  return {
    kind: "unknown",
    claim: "this kernel has no guest_memfd, or this VM type takes none",
    reason: "this kernel has no guest_memfd, or this VM type takes none (KVM_CAP_GUEST_MEMFD=0 on the VM; " +
      "/dev/kvm's answer tells which: 0 there, the kernel has none)",
    note: "no guest_memfd for this VM: /dev/kvm's KVM_CAP_GUEST_MEMFD tells whether the kernel has any",
  };
}

/**
 * Decodes a cap's value: named bits for bit-mask caps (unknown bits as hex), a note where the
 * number alone does not say what it means (KVM_CAP_GUEST_MEMFD 0: {@link gmemAbsence}), else the
 * number. `system` is the system fd's answer when `value` is a VM's (`null`: not known); omitted,
 * `value` is the system fd's own. A VM's 0 says "no guest_memfd in this kernel" only beside a
 * system 0: older kernels answer 0 on a default VM while they have guest_memfd.
 */
export function describeCapValue(cap: number, value: number, system?: number | null): string {
  if (cap === CAP.GUEST_MEMFD && value === 0) {
    const absent = gmemAbsence(system === undefined ? { system: value } : { system: system ?? undefined, vm: value });
    if (absent) return `${value} (${absent.note})`;
  }
  const flags = CAP_VALUE_FLAGS[cap];
  if (!flags) return String(value);
  return `${value} (${flags.format(BigInt(value >>> 0)) || "none"})`;
}
