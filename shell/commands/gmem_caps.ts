/**
 * Warnings from a VM's caps before a guest_memfd is created: what the kernel will likely answer.
 * @module
 */

import { CAP, GUEST_MEMFD_FLAGS, type Vm } from "../../core.ts";

/**
 * What the VM's caps say of a guest_memfd create before it is sent (`gmem create`, `run --memory gmem:…`): KVM_CAP_GUEST_MEMFD 0 (the kernel
 * has none: it will answer ENOTTY), or flags KVM_CAP_GUEST_MEMFD_FLAGS does not list (EINVAL).
 * The ioctl is sent either way: the kernel's answer is what the user asked to see.
 */
export function gmemCapWarnings(vm: Vm, name: string, flags: bigint): string[] {
  const where = `on ${name} (${vm.typeName} VM)`;
  const cap = vm.checkExtension(CAP.GUEST_MEMFD);
  if (cap === 0) return [`warning: KVM_CAP_GUEST_MEMFD=0 ${where}: this kernel has no guest_memfd; sending anyway`];
  const have = vm.supportedGmemFlags();
  const missing = flags & ~have;
  if (missing === 0n) return [];
  return [
    `warning: flags ${GUEST_MEMFD_FLAGS.format(missing)} not in KVM_CAP_GUEST_MEMFD_FLAGS=${
      GUEST_MEMFD_FLAGS.format(have) || "0"
    } ${where}: the kernel will likely refuse; sending anyway`,
  ];
}
