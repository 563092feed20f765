/**
 * What kvmsh knows about why the kernel says no: a hint per (operation, errno), shown with the
 * error. Hints explain; they never replace the kernel's answer.
 * @module
 */

import type { NodeOwner } from "./device_node.ts";

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
    ENOTTY: () => "this kernel has no guest_memfd (KVM_CAP_GUEST_MEMFD=0)",
  },
  KVM_SET_USER_MEMORY_REGION2: {
    EINVAL: (a) =>
      isZero(a.size)
        ? `there is no memslot ${a.slot} to delete (size 0 deletes a slot; KVM answers EINVAL for one that does not exist)`
        : "check alignment of GPA/size/offset, that the gmem range is inside the file and not bound twice, that a " +
          "gmem slot has no readonly/log-dirty, and that an existing gmem slot is only deleted, never changed",
    EEXIST: () => "the GPA range overlaps another memslot",
    EBADF: () => "guest_memfd is not an open file descriptor",
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
    EFAULT: () =>
      "the page is not accessible from the host (private guest_memfd memory, or a page past the end of the file, would SIGBUS)",
  },
  process_vm_writev: {
    EFAULT: () =>
      "the page is not accessible from the host (private guest_memfd memory, or a page past the end of the file, would SIGBUS)",
  },
};

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
