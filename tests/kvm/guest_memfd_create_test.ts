/**
 * KVM_CREATE_GUEST_MEMFD on real /dev/kvm, the creation checks of the kernel's
 * guest_memfd_test.c: every flag bit 0..63 against KVM_CAP_GUEST_MEMFD_FLAGS, sizes 1..4095
 * refused for each flag set, and two gmem files with their own inodes and sizes. Skipped, with
 * the reason, on a host whose KVM has no guest_memfd; there the last tests check what it answers
 * instead (caps 0, KVM_CREATE_GUEST_MEMFD refused with ENOTTY and a hint, no fd left behind).
 */

import { deepStrictEqual as eq, notDeepStrictEqual, ok, throws } from "node:assert/strict";
import { CAP, GUEST_MEMFD_FLAGS, KvmError } from "../../mod.ts";
import { fdSnapshot, gmemTest } from "../kvm_env.ts";
import {
  expectErrno,
  FLAG_SETS,
  flagSetTest,
  noGmemTest,
  onVm,
  PAGE,
  startFdLeakCheck,
  SUPPORTED_FLAGS,
} from "./guest_memfd_support.ts";

const endFdCheck = startFdLeakCheck("guest_memfd create");

gmemTest("guest_memfd flags: the cap names mmap and init-shared on a default VM", () => {
  onVm((vm, kvm) => {
    eq(vm.supportedGmemFlags(), SUPPORTED_FLAGS);
    eq(BigInt(vm.checkExtension(CAP.GUEST_MEMFD_FLAGS)), SUPPORTED_FLAGS);
    ok(kvm.checkExtension(CAP.GUEST_MEMFD) > 0, "KVM_CAP_GUEST_MEMFD");
    // Unknown bits would print as hex, never vanish.
    eq(GUEST_MEMFD_FLAGS.format(SUPPORTED_FLAGS).includes("0x"), (SUPPORTED_FLAGS & ~GUEST_MEMFD_FLAGS.all) !== 0n);
  });
});

gmemTest("guest_memfd flags: each bit 0..63 — supported gives an fd, unsupported EINVAL", () => {
  onVm((vm) => {
    const valid = vm.supportedGmemFlags();
    let accepted = 0n;
    for (let bit = 0n; bit < 64n; bit++) {
      const flag = 1n << bit;
      if (flag & valid) {
        const g = vm.createGuestMemfd(PAGE, flag);
        ok(g.fd >= 0);
        eq(g.stat().size, PAGE);
        g.close();
        accepted |= flag;
      } else {
        expectErrno("EINVAL", () => vm.createGuestMemfd(PAGE, flag), `flag 0x${flag.toString(16)}`);
      }
    }
    eq(accepted, valid);
    eq(vm.gmems.length, 0);
  });
});

for (const fs of FLAG_SETS) {
  flagSetTest(fs, `guest_memfd [${fs.name}]: sizes 1..4095 are refused with EINVAL (and the hint says why)`, () => {
    onVm((vm) => {
      for (let size = 1n; size < PAGE; size++) {
        const e = expectErrno("EINVAL", () => vm.createGuestMemfd(size, fs.flags), `size ${size}`);
        if (size === 1n) {
          eq(e.op, "KVM_CREATE_GUEST_MEMFD");
          ok(e.hint?.includes("multiple of the page size"), e.message);
        }
      }
      // 2^63 and above: the kernel's loff_t is negative, and the hint says so (not "flags").
      const huge = expectErrno("EINVAL", () => vm.createGuestMemfd(1n << 63n, fs.flags), "size 2^63");
      eq(huge.hint, "the kernel reads the size as a signed loff_t: 2^63 and above is negative");
      eq(vm.gmems.length, 0);
    });
  });
}

gmemTest("guest_memfd: two files have distinct inodes and keep their own sizes", () => {
  onVm((vm) => {
    const g1 = vm.createGuestMemfd(PAGE, 0n);
    eq(g1.stat().size, PAGE);
    const g2 = vm.createGuestMemfd(PAGE * 2n, 0n);
    eq(g2.stat().size, PAGE * 2n);
    const s1 = g1.stat();
    eq(s1.size, PAGE, "the first file's size is unchanged after the second is made");
    notDeepStrictEqual(s1.ino, g2.stat().ino);
    notDeepStrictEqual(g1.fd, g2.fd);
    eq(vm.gmems.map((g) => g.name), [g1.name, g2.name]);
    g2.close();
    g1.close();
    eq(vm.gmems.length, 0);
  });
});

gmemTest("guest_memfd: size 0 is refused with EINVAL", () => {
  onVm((vm) => void expectErrno("EINVAL", () => vm.createGuestMemfd(0n, 0n), "size 0"));
});

gmemTest("guest_memfd: flags given by name are sent as bits", () => {
  onVm((vm) => {
    for (const fs of FLAG_SETS) {
      using g = vm.createGuestMemfd(PAGE, fs.name);
      eq(g.flags, fs.flags);
      eq(g.flagNames, fs.name);
    }
  });
});

noGmemTest("guest_memfd caps without guest_memfd: KVM_CAP_GUEST_MEMFD and _FLAGS are 0 (none)", () => {
  onVm((vm, kvm) => {
    eq([kvm.checkExtension(CAP.GUEST_MEMFD), vm.checkExtension(CAP.GUEST_MEMFD)], [0, 0]);
    eq([kvm.checkExtension(CAP.GUEST_MEMFD_FLAGS), vm.checkExtension(CAP.GUEST_MEMFD_FLAGS)], [0, 0]);
    eq(vm.supportedGmemFlags(), 0n);
    eq(SUPPORTED_FLAGS, 0n);
    eq(GUEST_MEMFD_FLAGS.format(SUPPORTED_FLAGS), "");
  });
});

noGmemTest(
  "guest_memfd without guest_memfd: createGuestMemfd is a KvmError ENOTTY naming KVM_CAP_GUEST_MEMFD=0, no fd leaked",
  () => {
    onVm((vm, kvm) => {
      // Whatever is asked (valid or not), the ioctl is not there: ENOTTY before any argument check.
      const asks: [bigint, bigint | string, string][] = [
        [PAGE, 0n, "0"],
        [2n << 20n, "mmap,init-shared", "mmap|init-shared"],
        [PAGE, "mmap", "mmap"],
        [0n, 0n, "0"],
        [1n, 0n, "0"],
        [PAGE, 1n << 63n, "0x8000000000000000"],
      ];
      const before = fdSnapshot();
      for (const [size, flags, shown] of asks) {
        throws(() => vm.createGuestMemfd(size, flags), (e: unknown) => {
          ok(e instanceof KvmError, String(e));
          eq(e.errnoName, "ENOTTY", e.message);
          eq([e.syscall, e.op], ["ioctl", "KVM_CREATE_GUEST_MEMFD"]);
          eq(e.hint, "this kernel has no guest_memfd (KVM_CAP_GUEST_MEMFD=0)");
          ok(e.message.includes("KVM_CAP_GUEST_MEMFD=0"), e.message);
          eq([e.args.size, e.args.flags], [size, shown], "the arguments sent are named");
          return true;
        });
      }
      eq(fdSnapshot(), before, "no fd left behind by a refused KVM_CREATE_GUEST_MEMFD");
      eq(vm.gmems.length, 0, "nothing tracked");
      eq(kvm.nextName("gmem"), "gmem0", "no gmem name used up");
    });
  },
);

endFdCheck();
