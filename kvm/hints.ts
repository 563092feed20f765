/**
 * What kvmsh knows about why the kernel says no: a hint per (operation, errno), shown with the
 * error. Hints explain; they never replace the kernel's answer.
 * @module
 */

import type { NodeOwner } from "./device_node.ts";
import { MEMSLOT_FLAGS } from "../ffi/uapi.ts";
import { gmemAbsence } from "../ffi/caps.ts";
import { hex } from "./units.ts";

type HintRule = (args: Record<string, unknown>) => string | undefined;

const HINTS: Record<string, Record<string, HintRule>> = {
  KVM_SET_MEMORY_ATTRIBUTES: {
    ENOTTY: () =>
      "this VM type has no memory attributes (KVM_CAP_MEMORY_ATTRIBUTES=0 on this VM): private memory needs a VM type " +
      "that supports it (sw-protected, snp, tdx) and a kernel built with it",
    EINVAL: () => "address and size must be page aligned, size non-zero, attributes among KVM_CAP_MEMORY_ATTRIBUTES",
    EFAULT: () => "the kernel could not read the struct",
  },
  KVM_CREATE_GUEST_MEMFD: {
    EINVAL: (a) =>
      typeof a.size === "bigint" && a.size >= 1n << 63n
        ? "the kernel reads the size as a signed loff_t: 2^63 and above is negative"
        : typeof a.size === "bigint" && (a.size === 0n || a.size % 4096n !== 0n)
        ? "size must be a non-zero multiple of the page size"
        : "flags must be among KVM_CAP_GUEST_MEMFD_FLAGS on this VM (INIT_SHARED may need MMAP on some kernels)",
    // ENOTTY: the ioctl is not built in, which is what /dev/kvm's KVM_CAP_GUEST_MEMFD=0 means.
    ENOTTY: () => gmemAbsence({ system: 0 })!.reason,
  },
  KVM_SET_USER_MEMORY_REGION2: {
    EINVAL: (a) => memslotHint("EINVAL", a),
    EEXIST: (a) => memslotHint("EEXIST", a),
    EBADF: () => "guest_memfd is not an open file descriptor",
  },
  KVM_SET_USER_MEMORY_REGION: {
    EINVAL: (a) => memslotHint("EINVAL", a, { legacy: true }),
    EEXIST: (a) => memslotHint("EEXIST", a, { legacy: true }),
  },
  KVM_CREATE_VCPU: {
    EINVAL: () =>
      "the vCPU id must be below KVM_CAP_MAX_VCPU_ID (caps MAX_VCPU_ID) and the VM holds at most KVM_CAP_MAX_VCPUS vCPUs",
    EEXIST: () => "a vCPU with this id exists on this VM (KVM keeps a closed vCPU's id until the VM closes)",
  },
  KVM_CREATE_VM: {
    EINVAL: () => "this host does not accept that VM type (see KVM_CAP_VM_TYPES)",
  },
  KVM_ENABLE_CAP: {
    EINVAL: () => "the cap cannot be enabled here, or its args are out of range",
  },
  KVM_RUN: {
    EINTR: () => "interrupted (kick, signal or immediate_exit): the vCPU can run again",
    EFAULT: () => "a memory fault the kernel could not resolve; see the exit (MEMORY_FAULT) for the GPA",
  },
  mmap: {
    ENODEV: () => "this guest_memfd was created without the mmap flag",
    EINVAL: (a) =>
      a.fd === -1
        ? "anonymous memory: the length must be non-zero"
        : a.shared === false
        ? "guest_memfd supports only MAP_SHARED mappings"
        : "offset/length must be page aligned",
  },
  fallocate: {
    EINVAL: () => "offset and length must be page aligned, inside the file, and non-zero",
    EOPNOTSUPP: () => "guest_memfd takes only FALLOC_FL_KEEP_SIZE, alone (allocate) or with PUNCH_HOLE",
  },
  read: {
    EINVAL: (a) => gmem(a, "guest_memfd has no read/write: reach its memory through mmap (the mmap flag) or a memslot"),
  },
  write: {
    EINVAL: (a) => gmem(a, "guest_memfd has no read/write: reach its memory through mmap (the mmap flag) or a memslot"),
  },
  pread: {
    ESPIPE: (a) => gmem(a, "guest_memfd has no pread/pwrite (it is not seekable): reach its memory through mmap"),
    EINVAL: (a) => gmem(a, "guest_memfd has no pread/pwrite: reach its memory through mmap"),
  },
  pwrite: {
    ESPIPE: (a) => gmem(a, "guest_memfd has no pread/pwrite (it is not seekable): reach its memory through mmap"),
    EINVAL: (a) => gmem(a, "guest_memfd has no pread/pwrite: reach its memory through mmap"),
  },
  ftruncate: {
    EINVAL: (a) =>
      gmem(
        a,
        "a guest_memfd's size is fixed when it is created (KVM_CREATE_GUEST_MEMFD size): it cannot be truncated or grown",
      ),
  },
  process_vm_readv: {
    EFAULT: (a) => faultHint("read", faultArgs(a)),
  },
  process_vm_writev: {
    EFAULT: (a) => faultHint("write", faultArgs(a)),
  },
};

/** What kvmsh knows beyond the arguments of a failed KVM_SET_USER_MEMORY_REGION(2) (the VM's books). */
export interface MemslotHintContext {
  /** The legacy KVM_SET_USER_MEMORY_REGION (no guest_memfd fields). */
  legacy?: boolean;
  /** KVM_CAP_GUEST_MEMFD on the VM, when asked (a call that sent the guest-memfd flag). */
  gmemCap?: number;
  /**
   * KVM_CAP_GUEST_MEMFD on the system fd, when asked: only its 0 means the kernel has no
   * guest_memfd (a VM's 0 beside a system 1 means this VM type takes none; see gmemAbsence).
   */
  gmemSystemCap?: number;
  /** The live slot of the same id in kvmsh's books, as it is. */
  live?: { gpa: bigint; size: bigint; userspaceAddr: bigint; flags: bigint };
  /**
   * The live slots of kvmsh's books whose GPA range the call overlaps (other ids). Given (even
   * empty) when the books were read: then a missing `live` means kvmsh has no slot of that id.
   */
  overlaps?: readonly { slot: number; gpa: bigint; size: bigint }[];
}

const PAGE = 4096n;
/** The top of x86-64 user space with 4-level paging (TASK_SIZE_MAX): access_ok refuses past it. */
const USER_TOP_4LEVEL = 0x7ffffffff000n;
/** KVM_MEM_MAX_NR_PAGES: the most pages one slot may have. */
const MAX_SLOT_PAGES = (1n << 31n) - 1n;
/** KVM_USER_MEM_SLOTS on x86 (KVM_CAP_NR_MEMSLOTS there). */
const X86_USER_SLOTS = 32764;
/**
 * The most guest physical address bits any x86 host gives a slot (kvm_mmu_max_gfn: the host's
 * MAXPHYADDR, at most 52): KVM refuses a new or moved slot that ends above the host's.
 */
const X86_MAX_GPA_BITS = 52n;

function big(v: unknown): bigint | undefined {
  return typeof v === "bigint" ? v : typeof v === "number" && Number.isInteger(v) ? BigInt(v) : undefined;
}

/** The flags a memslot call sent, from its args (names as formatted, a number, or bits). */
function sentFlags(v: unknown): bigint {
  if (typeof v === "bigint") return v;
  if (typeof v === "number") return BigInt(v);
  if (typeof v === "string") {
    try {
      return MEMSLOT_FLAGS.parse(v);
    } catch {
      return 0n;
    }
  }
  return 0n;
}

/**
 * The hint for KVM_SET_USER_MEMORY_REGION(2)'s EINVAL or EEXIST, fitted to what was sent: for a
 * plain slot, which of its fields KVM refuses (flags, alignment, a userspace range outside user
 * space, the slot id, a range past 2^64 or the host's maximum GPA, a change KVM does not make to
 * a live slot); for a guest-memfd slot, the guest_memfd rules — or, where KVM_CAP_GUEST_MEMFD is
 * 0, that this kernel (system fd 0) or this VM type (VM 0, system ≥ 1) has no guest_memfd. A
 * delete (size 0) gets the same field checks, which KVM makes before it looks the slot up; "no
 * memslot N" is said only where kvmsh's books have no slot N (hedged where the books were not
 * read). Specific findings come alone; without one, the rules for that kind of slot are listed.
 */
export function memslotHint(errnoName: string, a: Record<string, unknown>, ctx: MemslotHintContext = {}): string {
  const gpa = big(a.gpa) ?? 0n;
  const size = big(a.size) ?? 0n;
  if (errnoName === "EEXIST") {
    const o = ctx.overlaps?.[0];
    return o
      ? `the GPA range ${hex(gpa)}+${hex(size)} overlaps another memslot: slot ${o.slot} (GPA ${hex(o.gpa)}+${
        hex(o.size)
      })`
      : "the GPA range overlaps another memslot";
  }
  const del = isZero(a.size);
  const flags = sentFlags(a.flags);
  const bits = MEMSLOT_FLAGS.bits;
  const gmem = (flags & bits["guest-memfd"]) !== 0n;
  if (gmem && ctx.legacy) {
    return "KVM_SET_USER_MEMORY_REGION (the legacy ioctl) has no guest_memfd fields and refuses the guest-memfd " +
      "flag: a guest_memfd is bound with KVM_SET_USER_MEMORY_REGION2";
  }
  const absent = gmem ? gmemAbsence({ system: ctx.gmemSystemCap, vm: ctx.gmemCap }) : undefined;
  if (absent) {
    return `${absent.reason}: ${
      absent.kind === "kernel" ? "it refuses" : absent.kind === "vm-type" ? "this VM refuses" : "KVM refuses"
    } the guest-memfd flag; a slot here is plain host memory (no guest-memfd flag, no guest_memfd)`;
  }
  const found: string[] = [];
  const unknown = flags & ~MEMSLOT_FLAGS.all;
  if (unknown) found.push(`flags ${hex(unknown)} are no KVM_MEM_* flag (known: ${MEMSLOT_FLAGS.names.join(", ")})`);
  const noGmem = flags & (bits.readonly | bits["log-dirty"]);
  if (gmem && noGmem) {
    found.push(
      `a guest-memfd slot takes no ${MEMSLOT_FLAGS.format(noGmem)} (KVM has no read-only or dirty-logged ` +
        "guest_memfd memory)",
    );
  }
  const uaddr = big(a.userspace_addr) ?? 0n;
  const gmemOffset = big(a.gmem_offset) ?? 0n;
  const aligned: [string, bigint][] = [["guest_phys_addr", gpa], ["memory_size", size], ["userspace_addr", uaddr]];
  if (gmem) aligned.push(["guest_memfd_offset", gmemOffset]);
  for (const [name, v] of aligned) if (v % PAGE !== 0n) found.push(`${name} ${hex(v)} is not page aligned`);
  // KVM refuses gpa + size < gpa in u64: a sum of exactly 2^64 wraps to 0 as well.
  if (gpa + size >= 1n << 64n) {
    found.push(`guest_phys_addr ${hex(gpa)} + memory_size ${hex(size)} wraps past 2^64`);
  } else if (!del && gpa + size > 1n << X86_MAX_GPA_BITS) {
    found.push(
      `the GPA range ${hex(gpa)}+${hex(size)} ends above 2^${X86_MAX_GPA_BITS}, past any x86 host's maximum guest ` +
        "physical address (MAXPHYADDR, at most 52 bits: kvm_mmu_max_gfn)",
    );
  }
  if (size / PAGE > MAX_SLOT_PAGES) {
    found.push(`memory_size ${hex(size)} is more than a slot's 2^31-1 pages (KVM_MEM_MAX_NR_PAGES)`);
  }
  if (uaddr + size > USER_TOP_4LEVEL) {
    found.push(
      `userspace_addr ${hex(uaddr)} + memory_size ends at ${hex(uaddr + size)}, above the top of user space ` +
        `(${hex(USER_TOP_4LEVEL)} with 4-level paging, 0xfffffffffff000 with 5-level): KVM wants a canonical user ` +
        "range it can access (access_ok)",
    );
  }
  // The field is a u32: a negative id (-1) reaches KVM as its u32 value (0xffffffff).
  const slot = typeof a.slot === "number" ? a.slot >>> 0 : undefined;
  if (slot !== undefined) {
    const id = slot & 0xffff;
    const as = slot >>> 16;
    if (id >= X86_USER_SLOTS) {
      found.push(`slot id ${id} (bits 0..15) is not below KVM_CAP_NR_MEMSLOTS (${X86_USER_SLOTS} on x86)`);
    }
    if (as > 0) {
      found.push(
        `slot ${hex(slot)} is in address space ${as} (bits 16..31), which exists only where ` +
          `KVM_CAP_MULTI_ADDRESS_SPACE is above ${as} (x86 with SMM: 2)`,
      );
    }
  }
  const live = ctx.live;
  if (del) {
    // The fields above are what KVM checks before it looks the slot up; only then "no such slot".
    if (found.length) return found.join("; ");
    const how = "size 0 deletes a slot; KVM answers EINVAL for one that does not exist";
    if (live) {
      return `slot ${a.slot} is live in kvmsh's books (GPA ${hex(live.gpa)}+${hex(live.size)}) and the delete's ` +
        "fields pass the checks kvmsh knows: KVM's slots may differ from the books (a raw memslot call behind " +
        `kvmsh's back), or the flags are not for this VM type (${how})`;
    }
    return ctx.overlaps !== undefined
      ? `there is no memslot ${a.slot} to delete (${how})`
      : `there is no memslot ${a.slot} to delete, or KVM refused a field kvmsh does not check (${how})`;
  }
  if (live) {
    const changed: string[] = [];
    if (live.size !== size) changed.push(`size (it has ${hex(live.size)})`);
    if (live.userspaceAddr !== uaddr) changed.push(`userspace_addr (it has ${hex(live.userspaceAddr)})`);
    if ((live.flags ^ flags) & bits.readonly) changed.push("readonly flag");
    const wasGmem = (live.flags & bits["guest-memfd"]) !== 0n;
    if (wasGmem) {
      found.push(`slot ${a.slot} is a live guest-memfd slot: KVM only deletes one, it changes nothing of it`);
    } else if (gmem) {
      found.push(`slot ${a.slot} is live without guest_memfd: KVM does not add one to a live slot (delete it first)`);
    }
    if (changed.length && !wasGmem) {
      found.push(
        `slot ${a.slot} is live (GPA ${hex(live.gpa)}+${hex(live.size)}): KVM only moves a live slot or changes its ` +
          `log-dirty flag, so a new ${listed(changed)} ${changed.length > 1 ? "need" : "needs"} the slot deleted first`,
      );
    }
  }
  if (found.length) return found.join("; ");
  if (gmem) {
    return "a guest-memfd slot: check alignment of GPA/size/offset, that guest_memfd is one of this VM, that the " +
      "gmem range is inside the file and not bound twice, that the slot has no readonly/log-dirty, and that an " +
      "existing gmem slot is only deleted, never changed" +
      (ctx.gmemCap === undefined && ctx.gmemSystemCap === undefined
        ? "; a kernel without guest_memfd (KVM_CAP_GUEST_MEMFD=0 on /dev/kvm), or a VM type without it (0 on the " +
          "VM), refuses the flag itself"
        : "");
  }
  return "a plain slot: KVM wants guest_phys_addr, memory_size and userspace_addr page aligned, the userspace range " +
    "inside user space, the GPA range below the host's maximum guest physical address (MAXPHYADDR), at most " +
    "2^31-1 pages, flags among log-dirty|readonly (readonly: KVM_CAP_READONLY_MEM, not on " +
    "VM types with protected state), a slot id below KVM_CAP_NR_MEMSLOTS; and of a live slot it only moves the GPA " +
    "or changes log-dirty (a new size, userspace_addr or readonly needs a delete first)";
}

/** What faulted, as the fault hint needs it: a mapping's source and its protection as made. */
export interface FaultedMapping {
  /** The mapping's source (`anon`, `gmem0`, `gmem0+0x2000`, `vcpu0.kvm_run`), when known. */
  source?: string;
  /** Its protection as made (`rw`, `r`, `none`), when known. */
  prot?: string;
}

/** Why the fault-safe path faulted, and the signal a real access would get (where known). */
export interface FaultCause {
  /** SIGSEGV for an access the mapping's protection forbids or for anonymous memory, SIGBUS for a guest_memfd page. */
  signal?: "SIGSEGV" | "SIGBUS";
  /** The hint. */
  text: string;
}

/** A fault's args (a MemoryFaultError's, or replayed) as {@link FaultedMapping}. */
export function faultArgs(a: Record<string, unknown>): FaultedMapping {
  return {
    source: typeof a.source === "string" ? a.source : undefined,
    prot: typeof a.prot === "string" ? a.prot : undefined,
  };
}

/**
 * Why host memory could not be read or written on the fault-safe path (process_vm_readv/writev
 * answered EFAULT), and the signal a real access would get — the one decision the hint and the
 * shell's error line both use. First the protection, for any mapping: an access it forbids would
 * SIGSEGV. Then the kind of mapping: anonymous memory faults only where it is gone or
 * re-protected (SIGSEGV); a guest_memfd page (source `gmemN`) where it is private or past the end
 * of the file (SIGBUS); of any other mapping (a vCPU's kvm_run) nothing more is known.
 */
export function faultCause(access: "read" | "write", m: FaultedMapping): FaultCause {
  const src = m.source;
  const kind = src === undefined
    ? undefined
    : /^anon(\+|$)/.test(src)
    ? "anon"
    : /^gmem\d+(\+|$)/.test(src)
    ? "gmem"
    : "other";
  const what = kind === "anon" ? "anonymous memory" : kind === "gmem" ? `guest_memfd memory (${src})` : src;
  const need = access === "read" ? "r" : "w";
  if (what !== undefined && m.prot !== undefined && !m.prot.includes(need)) {
    return {
      signal: "SIGSEGV",
      text: `${what} mapped prot ${m.prot}: the host may not ${access} it (a real access would SIGSEGV, ` +
        `not SIGBUS); map it ${access === "read" ? "r or rw" : "rw"}, or mprotect it`,
    };
  }
  if (kind === "anon") {
    return {
      signal: "SIGSEGV",
      text: `anonymous memory the host cannot ${access} here: ` +
        (m.prot !== undefined
          ? `it was mapped ${m.prot}, so it was unmapped or re-protected behind kvmsh's back`
          : "mapped without that access (prot none, or read-only for a write), or unmapped behind kvmsh's back") +
        " (a real access would SIGSEGV, not SIGBUS)",
    };
  }
  if (kind === "gmem") {
    return {
      signal: "SIGBUS",
      text: "the page is not accessible from the host (private guest_memfd memory, or a page past the end of the " +
        "file, would SIGBUS)",
    };
  }
  if (kind === "other") {
    return {
      text: `${src} cannot be ${access === "read" ? "read" : "written"} by the host here: ` +
        (m.prot !== undefined
          ? `it was mapped ${m.prot}, so it was unmapped or re-protected behind kvmsh's back`
          : "mapped without that access, or unmapped behind kvmsh's back"),
    };
  }
  return {
    text: "the page is not accessible from the host: private guest_memfd memory or a page past the end of its file " +
      "(a real access would SIGBUS), or memory mapped without that access (SIGSEGV)",
  };
}

/** {@link faultCause}'s hint alone. */
export function faultHint(access: "read" | "write", m: FaultedMapping): string {
  return faultCause(access, m).text;
}

/** `a`, `a and b`, `a, b and c`. */
function listed(items: readonly string[]): string {
  return items.length > 1 ? `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}` : items.join("");
}

/** A size argument that is zero (bigint or number). */
function isZero(v: unknown): boolean {
  return v === 0n || v === 0;
}

/** The hint when the failing call was on a guest_memfd (its args name one). */
function gmem(a: Record<string, unknown>, hint: string): string | undefined {
  return a.gmem === undefined ? undefined : hint;
}

/**
 * Why opening a KVM device node (`/dev/kvm` or any path given to `Kvm.open`) failed, and how to
 * fix it: a missing node means no KVM module; EACCES means the user is not in the node's group —
 * or, for a node of group root (`node`, from device_node.ts nodeOwner), that only root may open it.
 */
export function kvmOpenHint(errnoName: string, path: string, node?: NodeOwner): string | undefined {
  switch (errnoName) {
    case "ENOENT":
      return `no ${path}: load the KVM module (modprobe kvm_intel or kvm_amd; kvm_pvm where nested) and enable ` +
        "virtualization in the firmware";
    case "ENXIO":
    case "ENODEV":
      return `${path} exists but no KVM driver answers it: load the KVM module (modprobe kvm_intel or kvm_amd; ` +
        "kvm_pvm where nested)";
    case "EACCES": {
      const mode = node ? `mode 0${node.mode.toString(8).padStart(3, "0")}` : "";
      if (node && node.gid === 0) {
        // Group root: joining "its group" would mean joining root's. Say what the node is.
        return `no permission on ${path}: the device is owned by ${node.user}:${node.group} ${mode} here: run as ` +
          "root, or give it a kvm group (udev rule)";
      }
      const group = node?.group ?? "kvm";
      return `no permission on ${path}${node ? ` (${node.user}:${node.group} ${mode})` : ""}: add yourself to its ` +
        `group ${group} (sudo usermod -aG ${group} $USER, then log in again) or run as root`;
    }
    case "EPERM":
      return `not permitted to open ${path} (container device policy or seccomp?)`;
    default:
      return undefined;
  }
}

/** The hint for an operation's errno, if kvmsh knows one. */
export function hintFor(op: string, errnoName: string, args: Record<string, unknown> = {}): string | undefined {
  return HINTS[op]?.[errnoName]?.(args);
}
