/**
 * x86_64 Linux syscall numbers kvmsh makes directly: every syscall ffi/libc.ts offers goes through
 * kvmsh's raw-syscall library (ffi/raw_syscall_lib.ts) by number, and the kick's signal handler
 * (kvm/kick_code.ts) makes some itself. `open` is `openat(AT_FDCWD, …)` and `readlink`
 * `readlinkat(AT_FDCWD, …)`, as glibc's are; the timer calls use the kernel's timer id, as glibc's
 * do for SIGEV_THREAD_ID; `pread`/`pwrite` are pread64/pwrite64.
 * @module
 */
export const SYS = Object.freeze({
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
});
