/**
 * Worker of ioctl_stub_test.ts: a fresh isolate (its own libc()), so the first ioctl calls go
 * through libffi and the IOCTL_STUB_AFTER-th binds the compiled stub. Counts Deno.dlopen calls
 * and posts what it saw.
 */

import { errno, IOCTL_STUB_AFTER, libc, O } from "../../ffi/libc.ts";
import { CAP } from "../../ffi/caps.ts";
import { IOCTL } from "../../ffi/uapi.ts";
import { ERRNO } from "../../ffi/errno.ts";

const post = (self as unknown as { postMessage(m: unknown): void }).postMessage.bind(self);
const dlopen = Deno.dlopen;
const opened: string[][] = [];
Deno.dlopen = ((path: string, symbols: Deno.ForeignLibraryInterface) => {
  opened.push(Object.keys(symbols));
  const lib = dlopen(path, symbols);
  // Binding the stub (the third dlopen: libc, the raw library, the stub) leaves errno ENOENT
  // here, so a call made before the binding (the wrong order) would report ENOENT instead of its
  // own errno.
  if (opened.length > 2) libc().open(new TextEncoder().encode("/nonexistent\0"), 0, 0);
  return lib;
}) as typeof Deno.dlopen;

const l = libc();
const kvm = l.open(new TextEncoder().encode("/dev/kvm\0"), O.RDWR | O.CLOEXEC, 0);
const first = l.ioctl;
const check = () => libc().ioctl(kvm, IOCTL.KVM_CHECK_EXTENSION, BigInt(CAP.USER_MEMORY));
/** KVM_GET_MSR_INDEX_LIST with room for no MSR: E2BIG, and the kernel writes how many there are. */
const msrList = () => {
  const buf = new Uint8Array(4);
  const r = libc().ioctl_buf(kvm, IOCTL.KVM_GET_MSR_INDEX_LIST, Deno.UnsafePointer.of(buf));
  return { r, errno: r < 0 ? errno() : 0, nmsrs: new DataView(buf.buffer).getUint32(0, true) };
};

const before = { check: check(), msr: msrList() }; // calls 1 and 2
let calls = 2;
while (calls < IOCTL_STUB_AFTER - 1) {
  if (check() !== 1) throw new Error(`call ${calls + 1}: KVM_CHECK_EXTENSION(USER_MEMORY) != 1`);
  calls++;
}
const stillFfi = opened.length === 2;
// The IOCTL_STUB_AFTER-th call binds the stub first, then fails: errno must still be this call's.
const boundary = { r: libc().ioctl(-1, IOCTL.KVM_CHECK_EXTENSION, 0n), errno: errno() };
const after = {
  stub: opened.length === 3,
  same: libc().ioctl === first,
  check: check(),
  msr: msrList(),
  badFd: { r: libc().ioctl(-1, IOCTL.KVM_RUN, 0n), errno: errno() },
  notKvm: { r: libc().ioctl(0, IOCTL.KVM_RUN, 0n), errno: errno() },
};
// A caller that kept the function from before gets answers (through the stub), and nothing more is bound.
const kept = Array.from({ length: IOCTL_STUB_AFTER + 10 }, () => first(kvm, IOCTL.KVM_CHECK_EXTENSION, 3n));
l.close(kvm);
post({
  before,
  stillFfi,
  boundary,
  after,
  kept: kept.every((r) => r === 1),
  opened,
  expect: { EBADF: ERRNO.EBADF, E2BIG: ERRNO.E2BIG, ENOTTY: ERRNO.ENOTTY },
});
