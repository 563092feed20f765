/**
 * The ABI vocabulary of the kvm layer: capability, ioctl, flag, exit-reason and errno names as
 * ffi/ defines them (once). Layers above kvm/ (mod.ts, scenario/) take them from here, so
 * nothing reaches past its neighbour.
 * @module
 */

export {
  CAP,
  CAP_NAMES,
  CAP_VALUE_FLAGS,
  capName,
  CAPS_UAPI_VERSION,
  describeCapValue,
  gmemAbsence,
  REPORT_CAPS,
  resolveCap,
} from "../ffi/caps.ts";
export type { GmemAbsence } from "../ffi/caps.ts";
export {
  EXIT,
  EXIT_REASON_NAMES,
  exitReasonName,
  FALLOC,
  GUEST_MEMFD_FLAGS,
  IOCTL,
  ioctlName,
  KVM_API_VERSION,
  MEMORY_ATTRIBUTES,
  MEMORY_EXIT_FLAGS,
  MEMSLOT_FLAGS,
  VM_TYPES,
  vmTypeName,
} from "../ffi/uapi.ts";
export { ERRNO, ERRNO_NAMES, errnoName, parseErrno } from "../ffi/errno.ts";
export { FlagSet } from "../ffi/flags.ts";
export { PROT } from "../ffi/libc.ts";
