/**
 * The syscalls ffi/libc.ts makes through kvmsh's raw-syscall library, and sigaction through libc:
 * the x86_64 syscall numbers pinned (and checked against the installed kernel headers when
 * present), and each wrapper answering what the C function would (values, -1 with errno). The
 * file ones (pread/pwrite, fallocate, …) are guest_memfd's, whose own tests need a kernel with
 * guest_memfd: here they run on a memfd.
 */

import { deepStrictEqual as eq, ok } from "node:assert/strict";
import {
  CLOCK_MONOTONIC,
  cstr,
  errno,
  F,
  libc,
  MADV,
  MAP,
  MAP_FAILED,
  MFD,
  O,
  PROT,
  SA,
  SEEK,
  SIG,
  SYS,
} from "../../ffi/libc.ts";
import { FALLOC } from "../../ffi/uapi.ts";
import { RAW_ENTRY, RAW_SONAME } from "../../ffi/raw_syscall_lib.ts";
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
  rt_sigreturn: 15,
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

Deno.test("syscalls: open/close, mmap/mprotect/munmap, process_vm_writev, gettid; failures are -1 with errno", () => {
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

Deno.test("syscalls: a POSIX timer made, armed, read back through sigaction, deleted", () => {
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
  // sigaction (rt_sigaction): reading the current SIGINT action works.
  const old = new Uint8Array(SIGACTION.size);
  eq(l.sigaction(SIG.INT, null, old), 0);
  eq(l.sigaction(9999, null, old), -1);
  eq(errno(), ERRNO.EINVAL);
});

Deno.test("sigaction: a handler gets the raw library's trampoline as SA_RESTORER (the caller's struct untouched), runs and returns", () => {
  const l = libc();
  const raw = Deno.dlopen(RAW_SONAME, { kvmsh_sigreturn_address: { parameters: [], result: "u64" } });
  const SIGUSR1 = 10;
  const saved = new Uint8Array(SIGACTION.size);
  eq(l.sigaction(SIGUSR1, null, saved), 0);
  try {
    const trampoline = BigInt(raw.symbols.kvmsh_sigreturn_address());
    // A handler that returns at once: kvmsh_sigreturn_address itself (lea, ret).
    const handler = trampoline + BigInt(RAW_ENTRY.kvmsh_sigreturn_address - RAW_ENTRY.kvmsh_sigreturn);
    const act = new Uint8Array(SIGACTION.size);
    const av = new DataView(act.buffer);
    av.setBigUint64(SIGACTION.fields.sa_handler.offset, handler, true);
    av.setBigUint64(SIGACTION.fields.sa_flags.offset, BigInt(SA.RESTART), true);
    const before = [...act];
    eq(l.sigaction(SIGUSR1, act, null), 0);
    eq([...act], before, "the caller's struct is left as it was");
    const now = new Uint8Array(SIGACTION.size);
    eq(l.sigaction(SIGUSR1, null, now), 0);
    const nv = new DataView(now.buffer);
    eq(nv.getBigUint64(SIGACTION.fields.sa_handler.offset, true), handler);
    eq(nv.getBigUint64(SIGACTION.fields.sa_flags.offset, true), BigInt(SA.RESTART | SA.RESTORER));
    eq(nv.getBigUint64(SIGACTION.fields.sa_restorer.offset, true), trampoline);
    // Delivered to this thread: the handler returns through the trampoline (rt_sigreturn), and
    // this process goes on (a missing or wrong restorer kills it).
    for (let i = 0; i < 3; i++) eq(l.tgkill(Deno.pid, l.gettid(), SIGUSR1), 0);
    // An action that names its own restorer keeps it.
    av.setBigUint64(SIGACTION.fields.sa_flags.offset, BigInt(SA.RESTART | SA.RESTORER), true);
    av.setBigUint64(SIGACTION.fields.sa_restorer.offset, trampoline, true);
    eq(l.sigaction(SIGUSR1, act, null), 0);
    eq(l.sigaction(SIGUSR1, null, now), 0);
    eq(nv.getBigUint64(SIGACTION.fields.sa_restorer.offset, true), trampoline);
  } finally {
    eq(l.sigaction(SIGUSR1, saved, null), 0);
    raw.close();
  }
});

Deno.test("syscalls on a memfd: write/pwrite/pread/lseek, ftruncate, fallocate, fcntl, madvise/mincore, getpid, tgkill; failures are -1 with errno", () => {
  const l = libc();
  const fd = l.memfd_create(cstr("kvmsh-syscalls-test"), MFD.CLOEXEC);
  ok(fd >= 0, `memfd_create: ${fd}`);
  try {
    eq(Number(l.write(fd, new Uint8Array([1, 2, 3, 4]), 4n)), 4);
    eq(Number(l.lseek(fd, 0n, SEEK.CUR)), 4);
    eq(Number(l.lseek(fd, 0n, SEEK.END)), 4);
    eq(Number(l.pwrite(fd, new Uint8Array([9]), 1n, 8192n)), 1, "pwrite's offset");
    const got = new Uint8Array(4);
    eq(Number(l.pread(fd, got, 4n, 0n)), 4);
    eq([...got], [1, 2, 3, 4]);
    eq(Number(l.pread(fd, got, 1n, 8192n)), 1);
    eq(got[0], 9);
    eq(Number(l.lseek(fd, 0n, SEEK.END)), 8193);
    eq(Number(l.lseek(fd, -1n, SEEK.SET)), -1);
    eq(errno(), ERRNO.EINVAL);
    eq(l.ftruncate(fd, 16384n), 0);
    eq(Number(l.lseek(fd, 0n, SEEK.END)), 16384);
    eq(l.ftruncate(fd, -1n), -1);
    eq(errno(), ERRNO.EINVAL);
    eq(l.fallocate(fd, 0, 16384n, 4096n), 0, "allocate past the end grows the file");
    eq(Number(l.lseek(fd, 0n, SEEK.END)), 20480);
    eq(l.fallocate(fd, FALLOC.PUNCH_HOLE | FALLOC.KEEP_SIZE, 0n, 4096n), 0);
    eq(Number(l.pread(fd, got, 4n, 0n)), 4);
    eq([...got], [0, 0, 0, 0], "the punched page reads zero");
    eq(l.fallocate(fd, FALLOC.PUNCH_HOLE, 0n, 4096n), -1, "PUNCH_HOLE without KEEP_SIZE");
    eq(errno(), ERRNO.EOPNOTSUPP);
    eq(l.fcntl(fd, F.GETFD, 0n), F.FD_CLOEXEC);
    eq(l.fcntl(-1, F.GETFD, 0n), -1);
    eq(errno(), ERRNO.EBADF);

    const p = l.mmap(null, 8192n, PROT.READ | PROT.WRITE, MAP.SHARED, fd, 0n)!;
    ok(BigInt(Deno.UnsafePointer.value(p)) !== MAP_FAILED);
    const vec = new Uint8Array(2);
    new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p, 8192))[0] = 5;
    eq(l.mincore(p, 8192n, vec), 0);
    eq(vec[0] & 1, 1, "the page just written is resident");
    eq(l.madvise(p, 8192n, MADV.DONTNEED), 0);
    eq(l.madvise(p, 8192n, 12345), -1);
    eq(errno(), ERRNO.EINVAL);
    eq(l.mincore(Deno.UnsafePointer.create(Deno.UnsafePointer.value(p) + 1n), 4096n, vec), -1, "unaligned");
    eq(errno(), ERRNO.EINVAL);
    eq(l.munmap(p, 8192n), 0);
  } finally {
    eq(l.close(fd), 0);
  }
  eq(l.getpid(), Deno.pid);
  eq(l.tgkill(Deno.pid, l.gettid(), 0), 0, "signal 0: the thread exists");
  eq(l.tgkill(Deno.pid, 0x7fffffff, 0), -1);
  eq(errno(), ERRNO.ESRCH);
});
