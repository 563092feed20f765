/**
 * Warnings from a VM's caps before a guest_memfd is created: what the kernel will likely answer.
 * @module
 */

import { CAP, gmemAbsence, GUEST_MEMFD_FLAGS, type Vm } from "../../core.ts";

/**
 * What the caps say of a guest_memfd create before it is sent (`gmem create`, `run --memory gmem:…`):
 * no guest_memfd (KVM_CAP_GUEST_MEMFD 0 on the VM: on /dev/kvm too, the kernel has none and will
 * answer ENOTTY; 1 there, this VM type takes none — gmemAbsence decides), or flags
 * KVM_CAP_GUEST_MEMFD_FLAGS does not list (EINVAL). The ioctl is sent either way: the kernel's
 * answer is what the user asked to see.
 */
export function gmemCapWarnings(vm: Vm, name: string, flags: bigint): string[] {
  const where = `on ${name} (${vm.typeName} VM)`;
  const cap = vm.checkExtension(CAP.GUEST_MEMFD);
  if (cap === 0) {
    const absent = gmemAbsence({ system: vm.kvm.checkExtension(CAP.GUEST_MEMFD), vm: cap });
    if (absent) return [`warning: KVM_CAP_GUEST_MEMFD=0 ${where}: ${absent.claim}; sending anyway`];
  }
  const have = vm.supportedGmemFlags();
  const missing = flags & ~have;
  if (missing === 0n) return [];
  return [
    `warning: flags ${GUEST_MEMFD_FLAGS.format(missing)} not in KVM_CAP_GUEST_MEMFD_FLAGS=${
      GUEST_MEMFD_FLAGS.format(have) || "0"
    } ${where}: the kernel will likely refuse; sending anyway`,
  ];
}
