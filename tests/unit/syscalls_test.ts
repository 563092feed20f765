/**
 * The calls ffi/libc.ts makes through `syscall()` and with struct-returned results: the x86_64
 * syscall numbers pinned (and checked against the installed kernel headers when present), and
 * each wrapper answering what the C function would (values, -1 with errno).
 */

import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { CLOCK_MONOTONIC, cstr, errno, libc, MAP, MAP_FAILED, O, PROT, SIG, SYS } from "../../ffi/libc.ts";
import { ERRNO } from "../../ffi/errno.ts";
import { IOVEC, ITIMERSPEC, SIGACTION, SIGEVENT } from "../../ffi/structs.ts";

/** From asm/unistd_64.h (Linux 7.2). */
const HEADER_SYSCALLS: Record<string, number> = {
  read: 0,
  write: 1,
  close: 3,
  fstat: 5,
  lseek: 8,
  mmap: 9,
  mprotect: 10,
  munmap: 11,
  rt_sigaction: 13,
  ioctl: 16,
  pread64: 17,
  pwrite64: 18,
  mincore: 27,
  madvise: 28,
  getpid: 39,
  kill: 62,
  fcntl: 72,
  ftruncate: 77,
  gettid: 186,
  timer_create: 222,
  timer_settime: 223,
  timer_delete: 226,
  tgkill: 234,
  openat: 257,
  readlinkat: 267,
  fallocate: 285,
  process_vm_readv: 310,
  process_vm_writev: 311,
  memfd_create: 319,
};
const UNISTD = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h";

Deno.test("SYS: the x86_64 syscall numbers of the kernel headers", () => {
  eq({ ...SYS }, HEADER_SYSCALLS);
  let text: string;
  try {
    text = Deno.readTextFileSync(UNISTD);
  } catch {
    return; // no kernel headers installed: the pinned table above is the check
  }
  for (const [name, nr] of Object.entries(SYS)) {
    eq(new RegExp(`^#define __NR_${name} (\\d+)$`, "m").exec(text)?.[1], String(nr), `__NR_${name}`);
  }
});

Deno.test("libc through syscall(): open/close, mmap/mprotect/munmap, process_vm_writev, gettid; failures are -1 with errno", () => {
  const l = libc();
  const fd = l.open(cstr("/proc/self/stat"), O.RDONLY | O.CLOEXEC, 0);
  ok(fd >= 0, `open: ${fd}`);
  eq(l.close(fd), 0);
  eq(l.close(fd), -1);
  eq(errno(), ERRNO.EBADF);
  eq(l.open(cstr("/nonexistent/kvmsh"), O.RDONLY, 0), -1);
  eq(errno(), ERRNO.ENOENT);

  const p = l.mmap(null, 8192n, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS, -1, 0n);
  ok(p !== null && BigInt(Deno.UnsafePointer.value(p)) !== MAP_FAILED);
  const view = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p!, 8192));
  view[4096] = 7;
  eq(view[4096], 7);
  eq(l.mprotect(p, 8192n, PROT.READ), 0);
  eq(l.munmap(p, 8192n), 0);
  const bad = l.mmap(null, 0n, PROT.READ, MAP.PRIVATE | MAP.ANONYMOUS, -1, 0n);
  eq(BigInt(Deno.UnsafePointer.value(bad)), MAP_FAILED);
  eq(errno(), ERRNO.EINVAL);

  // process_vm_writev on ourselves: into the mapping, and EFAULT for an address nothing maps.
  const src = new Uint8Array([1, 2, 3, 4]);
  const q = l.mmap(null, 4096n, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS, -1, 0n)!;
  const iov = (base: bigint, len: number) => {
    const b = new Uint8Array(IOVEC.size);
    const dv = new DataView(b.buffer);
    dv.setBigUint64(IOVEC.fields.iov_base.offset, base, true);
    dv.setBigUint64(IOVEC.fields.iov_len.offset, BigInt(len), true);
    return b;
  };
  const local = iov(BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(src))), 4);
  const into = iov(BigInt(Deno.UnsafePointer.value(q)) + 8n, 4);
  eq(Number(l.process_vm_writev(Deno.pid, Deno.UnsafePointer.of(local), 1n, Deno.UnsafePointer.of(into), 1n, 0n)), 4);
  eq([...new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(q, 16)).subarray(8, 12)], [1, 2, 3, 4]);
  eq(l.munmap(q, 4096n), 0);
  const gone = iov(BigInt(Deno.UnsafePointer.value(q)), 4);
  eq(Number(l.process_vm_writev(Deno.pid, Deno.UnsafePointer.of(local), 1n, Deno.UnsafePointer.of(gone), 1n, 0n)), -1);
  eq(errno(), ERRNO.EFAULT);

  // This thread's id, as /proc/thread-self names it ("<pid>/task/<tid>"; Deno's readLink needs
  // more permissions than the tests have for /proc).
  const link = new Uint8Array(64);
  const n = Number(l.readlink(cstr("/proc/thread-self"), link, 64n));
  ok(n > 0);
  eq(String(l.gettid()), new TextDecoder().decode(link.subarray(0, n)).split("/").pop());
});

Deno.test("libc through syscall(): a POSIX timer made, armed, read back through sigaction, deleted", () => {
  const l = libc();
  const sev = new Uint8Array(SIGEVENT.size);
  const dv = new DataView(sev.buffer);
  dv.setInt32(SIGEVENT.fields.sigev_notify.offset, 1, /* SIGEV_NONE */ true);
  const id = new Uint8Array(8);
  eq(l.timer_create(CLOCK_MONOTONIC, sev, id), 0);
  const timer = new DataView(id.buffer).getBigUint64(0, true);
  const its = new Uint8Array(ITIMERSPEC.size);
  new DataView(its.buffer).setBigInt64(ITIMERSPEC.fields.value_sec.offset, 60n, true);
  eq(l.timer_settime(timer, 0, its, null), 0);
  eq(l.timer_delete(timer), 0);
  eq(l.timer_delete(timer), -1);
  eq(errno(), ERRNO.EINVAL);
  // sigaction (struct-returned, through libffi): reading the current SIGINT action works.
  const old = new Uint8Array(SIGACTION.size);
  eq(l.sigaction(SIG.INT, null, old), 0);
  eq(l.sigaction(9999, null, old), -1);
  eq(errno(), ERRNO.EINVAL);
});
