/**
 * KVM_SET_MEMORY_ATTRIBUTES on a default VM on real /dev/kvm. kvmsh always sends it and shows
 * the kernel's answer. Where KVM_CAP_MEMORY_ATTRIBUTES is 0 (this host: kvm_pvm on 6.18) the
 * ioctl answers ENOTTY and the error says why; where the cap names `private`, the calls must
 * succeed. The test branches on the cap, never on the host. The range is a guest_memfd slot where
 * the host has guest_memfd, else (GMEM_SKIP_REASON set) a slot over anonymous memory.
 */

import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { CAP, describeCapValue, MEMORY_ATTRIBUTES } from "../../mod.ts";
import { GMEM_SKIP_REASON, kvmTest } from "../kvm_env.ts";
import { expectErrno, onVm, PAGE, startFdLeakCheck } from "./guest_memfd_support.ts";

const endFdCheck = startFdLeakCheck("memory attributes");

const G4 = 1n << 32n;
const SIZE = 2n << 20n;
const PRIVATE = MEMORY_ATTRIBUTES.bits.private;

kvmTest("memory attributes: the cap, on the system fd and a default VM, decodes by name", () => {
  onVm((vm, kvm) => {
    const vmCap = vm.checkExtension(CAP.MEMORY_ATTRIBUTES);
    const sysCap = kvm.checkExtension(CAP.MEMORY_ATTRIBUTES);
    console.log(`  KVM_CAP_MEMORY_ATTRIBUTES: system ${sysCap}, default VM ${vmCap}`);
    ok(vmCap >= 0 && sysCap >= 0);
    eq(describeCapValue(CAP.MEMORY_ATTRIBUTES, 8), "8 (private)");
    eq(describeCapValue(CAP.MEMORY_ATTRIBUTES, 0), "0 (none)");
  });
});

kvmTest("memory attributes: set private/shared is sent; the answer follows the cap and is logged", () => {
  onVm((vm) => {
    const cap = BigInt(vm.checkExtension(CAP.MEMORY_ATTRIBUTES));
    if (GMEM_SKIP_REASON === undefined) {
      const g = vm.createGuestMemfd(SIZE, 0n);
      vm.addMemslot({ slot: 1, gpa: G4, size: SIZE, gmem: g, userspace: "none" });
    } else {
      // No guest_memfd on this host: the range is a plain slot over anonymous memory (the
      // attributes ioctl does not look at the memslots; the answers below are the same).
      vm.addMemslot({ slot: 1, gpa: G4, size: SIZE, userspace: "anon" });
    }
    if ((cap & PRIVATE) === 0n) {
      // No attributes on this VM type: the ioctl is not there, and the error says so.
      const e = expectErrno("ENOTTY", () => vm.setPrivate(G4, PAGE), "set private");
      eq(e.op, "KVM_SET_MEMORY_ATTRIBUTES");
      eq(e.syscall, "ioctl");
      ok(e.hint?.includes("KVM_CAP_MEMORY_ATTRIBUTES=0"), e.message);
      eq(e.args.gpa, G4);
      eq(e.args.size, PAGE);
      eq(e.args.attributes, "private");
      expectErrno("ENOTTY", () => vm.setShared(G4, PAGE), "set shared");
      // Plain numbers are sent the same (they were a TypeError: "Cannot mix BigInt").
      expectErrno("ENOTTY", () => vm.setMemoryAttributes(Number(G4), Number(PAGE), 8), "numbers");
      eq(vm.attributeLog, [
        { gpa: G4, size: PAGE, attributes: PRIVATE, result: "ENOTTY" },
        { gpa: G4, size: PAGE, attributes: 0n, result: "ENOTTY" },
        { gpa: G4, size: PAGE, attributes: PRIVATE, result: "ENOTTY" },
      ]);
      eq(cap, 0n, "a cap without `private` here is 0 (no other attribute exists in Linux 7.2)");
    } else {
      vm.setPrivate(G4, SIZE);
      vm.setShared(G4, PAGE);
      // Unaligned and zero-sized ranges are refused by every kernel that has the ioctl.
      expectErrno("EINVAL", () => vm.setPrivate(G4 + 1n, PAGE), "unaligned");
      expectErrno("EINVAL", () => vm.setPrivate(G4, 0n), "size 0");
      eq(vm.attributeLog.map((r) => r.result), ["ok", "ok", "EINVAL", "EINVAL"]);
    }
  });
});

kvmTest("memory attributes: the log is per VM and starts empty", () => {
  onVm((vm, kvm) => {
    eq(vm.attributeLog.length, 0);
    try {
      vm.setPrivate(G4, PAGE);
    } catch { /* the answer is in the log */ }
    const other = kvm.createVm();
    eq(other.attributeLog.length, 0);
    eq(vm.attributeLog.length, 1);
  });
});

endFdCheck();
