/** errno names: the one table, aliases, parsing, unknown numbers; strerror from the C library. */

import { deepStrictEqual as eq } from "node:assert/strict";
import { ERRNO, ERRNO_NAMES, errnoName, parseErrno } from "../../mod.ts";
import { strerror } from "../../ffi/libc.ts";

Deno.test("errno: the names kvmsh's checks use", () => {
  const want: Record<string, number> = {
    EPERM: 1,
    ENOENT: 2,
    EINTR: 4,
    ENXIO: 6,
    EBADF: 9,
    EAGAIN: 11,
    ENOMEM: 12,
    EACCES: 13,
    EFAULT: 14,
    EBUSY: 16,
    EEXIST: 17,
    ENODEV: 19,
    EINVAL: 22,
    ENOTTY: 25,
    ENOSPC: 28,
    ESPIPE: 29,
    E2BIG: 7,
    ENOSYS: 38,
    EOPNOTSUPP: 95,
    EHWPOISON: 133,
  };
  for (const [name, n] of Object.entries(want)) {
    eq(errnoName(n), name);
    eq(ERRNO[name], n);
  }
});

Deno.test("errno: aliases, parsing, unknown numbers", () => {
  eq(ERRNO.EWOULDBLOCK, ERRNO.EAGAIN);
  eq(ERRNO.EDEADLOCK, ERRNO.EDEADLK);
  eq(errnoName(4095), "E#4095");
  eq(parseErrno("einval"), 22);
  eq(parseErrno(" EFAULT "), 14);
  eq(parseErrno("22"), 22);
  eq(parseErrno("EBOGUS"), undefined);
  for (const [n, name] of Object.entries(ERRNO_NAMES)) eq(ERRNO[name], Number(n), name);
});

Deno.test("strerror: the C library's message", () => {
  eq(strerror(22), "Invalid argument");
  eq(strerror(25), "Inappropriate ioctl for device");
  eq(strerror(29), "Illegal seek");
});
