/**
 * The C library and kvmsh's raw-syscall library through `Deno.dlopen`: the calls kvmsh makes,
 * typed once. Every syscall here goes through the raw library (ffi/raw_syscall_lib.ts), which
 * hands back the kernel's own result: a failure returns -1 (the C convention callers test) and
 * leaves the kernel's errno for {@link errno}, taken from that result, not from libc's `errno`
 * (which V8 can overwrite before JS reads it: see raw_syscall_lib.ts); sigaction too, as the
 * kernel's rt_sigaction. The C library functions left (memory and string helpers, directory
 * reading) set no errno kvmsh reads; libc's `syscall()` only writes the raw library out.
 * @module
 */

import { errnoName } from "./errno.ts";
import { SIGACTION } from "./structs.ts";
import { RAW_SONAME, rawSyscallLibrary } from "./raw_syscall_lib.ts";
import { SYS } from "./syscall_numbers.ts";

export { SYS };

/**
 * Every syscall kvmsh makes, as the C prototype its callers see. All of them are made through
 * the raw library's `kvmsh_syscall` (libffi, nothing compiled: each is called a few times per
 * process), except the hot ones: ioctl (KVM_RUN, KVM_CHECK_EXTENSION) gets a compiled call stub
 * of `kvmsh_ioctl` from its {@link IOCTL_STUB_AFTER}th call, and process_vm_readv (ucalls, `x/`)
 * one of `kvmsh_syscall` on its first call.
 */
const SYSCALLS = {
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  /**
   * ioctl with an integer argument (or none). The request goes as a u32 (a plain number, no
   * BigInt per call): the kernel reads it as `unsigned int cmd` whatever the register's top half.
   */
  ioctl: { parameters: ["i32", "u32", "u64"], result: "i32" },
  /** ioctl with a pointer to a struct (kvm/fd.ts passes a JS buffer's address). */
  ioctl_buf: { name: "ioctl", parameters: ["i32", "u32", "pointer"], result: "i32" },
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  mprotect: { parameters: ["pointer", "usize", "i32"], result: "i32" },
  /**
   * Guest memory reads and writes (kvm/mapping.ts: ucalls, `x/`, loading a guest, `write`). The
   * iovec arrays go by address: a Mapping's are made once (their address with them).
   */
  process_vm_readv: { parameters: ["i32", "pointer", "u64", "pointer", "u64", "u64"], result: "isize" },
  process_vm_writev: { parameters: ["i32", "pointer", "u64", "pointer", "u64", "u64"], result: "isize" },
  gettid: { parameters: [], result: "i32" },
  /** (kvmsh itself reads `Deno.pid`.) */
  getpid: { parameters: [], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  pread: { name: "pread64", parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  pwrite: { name: "pwrite64", parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  lseek: { parameters: ["i32", "i64", "i32"], result: "i64" },
  fstat: { parameters: ["i32", "buffer"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "i64"], result: "i32" },
  fallocate: { parameters: ["i32", "i32", "i64", "i64"], result: "i32" },
  ftruncate: { parameters: ["i32", "i64"], result: "i32" },
  madvise: { parameters: ["pointer", "usize", "i32"], result: "i32" },
  /** Which pages of a range are resident (tests measure what a bulk access faulted in). */
  mincore: { parameters: ["pointer", "usize", "buffer"], result: "i32" },
  readlink: { parameters: ["buffer", "buffer", "usize"], result: "isize" },
  memfd_create: { parameters: ["buffer", "u32"], result: "i32" },
  /**
   * The kick's signal handlers (kvm/kick.ts): installing them, reading the one replaced. The
   * kernel's rt_sigaction with ffi/structs.ts's SIGACTION (the kernel's layout); an action with a
   * handler and no SA_RESTORER gets the raw library's `kvmsh_sigreturn` as glibc's sigaction
   * would give its own (in a copy: the caller's struct is left as it was).
   */
  sigaction: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  /** Stopping a guest (kvm/kick.ts): the kick signal, the deadline timer. */
  tgkill: { parameters: ["i32", "i32", "i32"], result: "i32" },
  timer_create: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  timer_settime: { parameters: ["u64", "i32", "buffer", "buffer"], result: "i32" },
  timer_delete: { parameters: ["u64"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/**
 * The C library's own functions kvmsh calls (none a syscall, none read errno), each bound on its
 * own first use: Deno compiles a call stub per symbol when it opens a library (~0.15 ms each),
 * which a short `kvmsh -c "vm create; run …"` process need not pay for the ones it never calls.
 */
const LAZY = {
  memset: { parameters: ["pointer", "i32", "usize"], result: "pointer" },
  memcpy: { parameters: ["pointer", "pointer", "usize"], result: "pointer" },
  /** memcpy into a JS buffer (bulk reads of a mapping). */
  memcpy_to_buf: { name: "memcpy", parameters: ["buffer", "pointer", "usize"], result: "pointer" },
  /** memcpy from a JS buffer (bulk writes to a mapping). */
  memcpy_from_buf: { name: "memcpy", parameters: ["pointer", "buffer", "usize"], result: "pointer" },
  /** memcmp of mapped memory against a JS buffer (bulk verify). */
  memcmp: { parameters: ["pointer", "buffer", "usize"], result: "i32" },
  sysconf: { parameters: ["i32"], result: "i64" },
  strerror: { parameters: ["i32"], result: "pointer" },
  opendir: { parameters: ["buffer"], result: "pointer" },
  readdir64: { parameters: ["pointer"], result: "pointer" },
  closedir: { parameters: ["pointer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

const SYMBOLS = { ...SYSCALLS, ...LAZY } as const satisfies Deno.ForeignLibraryInterface;

/** The library kvmsh loads: glibc's soname on Linux. */
export const LIBC_PATH = "libc.so.6";

type Symbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
type SyscallSymbols = Deno.DynamicLibrary<typeof SYSCALLS>["symbols"];
let syms: Symbols | undefined;

/**
 * The loaded libraries (opened on first use, once per isolate). The syscalls are own data
 * properties of the returned object; a LAZY one is an accessor on its prototype that
 * binds that symbol alone on first use and replaces itself there by the function, so the object's
 * own shape never changes (the hot paths' property loads stay monomorphic).
 */
export function libc(): Symbols {
  if (syms) return syms;
  const lazy: Record<string, unknown> = Object.create(null);
  for (const k of Object.keys(LAZY) as (keyof typeof LAZY)[]) {
    Object.defineProperty(lazy, k, {
      configurable: true,
      enumerable: true,
      get() {
        const fn = Deno.dlopen(LIBC_PATH, { [k]: LAZY[k] }).symbols[k];
        Object.defineProperty(lazy, k, { value: fn, enumerable: true });
        return fn;
      },
    });
  }
  syms = Object.assign(Object.create(lazy), bindSyscalls()) as Symbols;
  return syms;
}

/** openat(2)'s "relative to the working directory". */
const AT_FDCWD = -100;
/** memfd_create(2) flags: close-on-exec; never executable (execve), since Linux 6.3. */
export const MFD = Object.freeze({ CLOEXEC: 1, NOEXEC_SEAL: 8 });

/**
 * How the functions bound at start are reached: each is declared to return an 8-byte struct,
 * which makes Deno call it through libffi (~1 µs a call) with nothing compiled. The x86-64 SysV
 * ABI returns that struct in RAX, exactly where the function puts its int, long or pointer.
 */
const RAX = { struct: ["u64"] } as const;
const LIBC_BOUND = {
  /** libc's `syscall()`, only to write the raw library into a memfd before it exists. */
  syscall: { parameters: ["i64", "i64", "i64", "i64", "i64", "i64", "i64"], result: RAX },
  /** errno's address: why that failed, if it did. */
  __errno_location: { parameters: [], result: RAX },
} as const satisfies Deno.ForeignLibraryInterface;
/** `kvmsh_syscall(nr, a, b, c, d, e, f)` and the signal trampoline's address, through libffi. */
const RAW_BOUND = {
  kvmsh_syscall: { parameters: ["i64", "i64", "i64", "i64", "i64", "i64", "i64"], result: RAX },
  kvmsh_sigreturn_address: { parameters: [], result: RAX },
} as const satisfies Deno.ForeignLibraryInterface;
/** ioctl's compiled stub (see {@link IOCTL_STUB_AFTER}). */
const RAW_IOCTL = { kvmsh_ioctl: SYSCALLS.ioctl } as const satisfies Deno.ForeignLibraryInterface;
/** process_vm_readv's number, as its stub takes it. */
const NR_READV = BigInt(SYS.process_vm_readv);
/** process_vm_readv's compiled stub: `kvmsh_syscall` with its number first. */
const RAW_READV = {
  kvmsh_syscall: { parameters: ["i64", ...SYSCALLS.process_vm_readv.parameters], result: "i64" },
} as const satisfies Deno.ForeignLibraryInterface;

/**
 * ioctl calls made through libffi before ioctl's compiled stub is bound. Compiling it (and the
 * compiler's first use in the process) cost every start ~0.25 ms, which a short
 * `kvmsh -c "vm create; run …"` (~15 ioctls) never earns back, while a loop of exits or ioctls
 * earns it back within a few hundred calls (the stub is ~0.3 µs a call faster, and V8's fast call
 * once the caller is optimized).
 */
export const IOCTL_STUB_AFTER = 256;
type Arg = number | bigint;

/** The last failed call's errno, from the kernel's own return value. */
let lastErrno = 0;

/** A raw syscall result: -4095..-1 is the kernel's -errno (recorded; -1 returned, as libc would), else the value. */
function result(r: bigint): bigint {
  if (r < 0n && r > -4096n) {
    lastErrno = Number(-r);
    return -1n;
  }
  return r;
}

/** What RAX held, as the 8 bytes Deno returns for a struct result. */
function rax(bytes: Uint8Array<ArrayBuffer>): bigint {
  return new BigInt64Array(bytes.buffer)[0];
}

/** A buffer argument's bytes. */
function bytes(b: AllowSharedBufferSource): Uint8Array<ArrayBuffer> {
  return ArrayBuffer.isView(b)
    ? new Uint8Array(b.buffer as ArrayBuffer, b.byteOffset, b.byteLength)
    : new Uint8Array(b as ArrayBuffer);
}

/** An address for a syscall argument: a JS buffer's (null: 0) or a pointer's. */
function addr(b: AllowSharedBufferSource | null): Arg {
  return b === null ? 0 : Deno.UnsafePointer.value(Deno.UnsafePointer.of(b as BufferSource));
}

/**
 * Writes the raw library into a memfd and opens it from there (/proc/self/fd/N): nothing on disk,
 * nothing to clean up. Later binds find it by its soname (ld.so matches a loaded library's
 * DT_SONAME), so the memfd is closed at once.
 */
function loadRawLibrary(libcSyscall: (nr: number, ...args: Arg[]) => bigint, tlsErrno: () => number) {
  const fail = (what: string): never => {
    throw new Error(`kvmsh: cannot load its raw-syscall library: ${what}: ${errnoName(tlsErrno())}`);
  };
  const image = rawSyscallLibrary();
  // Sealed non-executable where the kernel knows the flag (vm.memfd_noexec=2 may refuse a memfd
  // without it; mmap with PROT_EXEC, which is all dlopen needs, still works); EINVAL before 6.3.
  const name = cstr(RAW_SONAME);
  let fd = Number(libcSyscall(SYS.memfd_create, addr(name), MFD.CLOEXEC | MFD.NOEXEC_SEAL));
  if (fd < 0) fd = Number(libcSyscall(SYS.memfd_create, addr(name), MFD.CLOEXEC));
  if (fd < 0) fail("memfd_create");
  try {
    for (let done = 0; done < image.length;) {
      const n = Number(libcSyscall(SYS.write, fd, addr(image.subarray(done)), image.length - done));
      if (n <= 0) fail("write");
      done += n;
    }
    const path = `/proc/self/fd/${fd}`;
    try {
      return Deno.dlopen(path, RAW_BOUND).symbols;
    } catch (e) {
      throw new Error(`kvmsh: cannot load its raw-syscall library from ${path} (is /proc mounted?): ${e}`);
    }
  } finally {
    libcSyscall(SYS.close, fd);
  }
}

function bindSyscalls(): SyscallSymbols {
  const c = Deno.dlopen(LIBC_PATH, LIBC_BOUND).symbols;
  let errnoView: Deno.UnsafePointerView | undefined;
  const tlsErrno = () => {
    errnoView ??= new Deno.UnsafePointerView(
      Deno.UnsafePointer.create(BigInt.asUintN(64, rax(c.__errno_location() as Uint8Array<ArrayBuffer>)))!,
    );
    return errnoView.getInt32(0);
  };
  const libcCall = c.syscall as unknown as (...args: Arg[]) => Uint8Array<ArrayBuffer>;
  const raw = loadRawLibrary((nr, a = 0, b = 0, d = 0) => rax(libcCall(nr, a, b, d, 0, 0, 0)), tlsErrno);
  const call = raw.kvmsh_syscall as unknown as (...args: Arg[]) => Uint8Array<ArrayBuffer>;
  const restorer = BigInt.asUintN(64, rax(raw.kvmsh_sigreturn_address() as Uint8Array<ArrayBuffer>));
  /** A syscall with up to six arguments (unused ones 0): its value, or -1 with {@link lastErrno} set. */
  const sys = (nr: number, a: Arg = 0, b: Arg = 0, d: Arg = 0, e: Arg = 0, f: Arg = 0, g: Arg = 0) =>
    result(rax(call(nr, a, b, d, e, f, g)));
  const int = (r: bigint) => Number(BigInt.asIntN(32, r));
  const ptr = (p: Deno.PointerValue) => Deno.UnsafePointer.value(p);
  let ioctlCalls = 0;
  let stub: ((fd: number, req: number, arg: bigint) => number) | undefined;
  const viaFfi = (fd: number, req: number, arg: bigint) => {
    if (++ioctlCalls === IOCTL_STUB_AFTER) stub = Deno.dlopen(RAW_SONAME, RAW_IOCTL).symbols.kvmsh_ioctl;
    return int(rax(call(SYS.ioctl, fd, req, arg, 0, 0, 0)));
  };
  // One function for every caller, whichever way it goes: the call sites stay monomorphic, and the
  // stub is called from one site that only ever sees the stub, where V8 makes it a fast call (a
  // property swapped from one function to the other made callers' sites polymorphic: no fast
  // call, KVM_CHECK_EXTENSION 205 → 460 ns). The result is the kernel's: -errno on failure.
  const ioctl = (fd: number, req: number, arg: bigint) => {
    const r = stub !== undefined ? stub(fd, req, arg) : viaFfi(fd, req, arg);
    if (r >= 0) return r;
    lastErrno = -r;
    return -1;
  };
  let readv: Deno.DynamicLibrary<typeof RAW_READV>["symbols"]["kvmsh_syscall"] | undefined;
  return {
    ioctl,
    // The same function: the struct's address as the integer argument (~0.1 µs a call, on an
    // ioctl that takes microseconds; a second stub cost every start ~0.1 ms).
    ioctl_buf: (fd, req, p) => ioctl(fd, req, BigInt(Deno.UnsafePointer.value(p))),
    process_vm_readv: (pid, local, nlocal, remote, nremote, flags) => {
      readv ??= Deno.dlopen(RAW_SONAME, RAW_READV).symbols.kvmsh_syscall;
      return result(BigInt(readv(NR_READV, pid, local, nlocal, remote, nremote, flags)));
    },
    process_vm_writev: (pid, local, nlocal, remote, nremote, flags) =>
      sys(SYS.process_vm_writev, pid, ptr(local), nlocal, ptr(remote), nremote, flags),
    sigaction: (sig, act, old) => {
      let a = act === null ? null : bytes(act);
      if (a !== null && a.length >= SIGACTION.size) {
        const v = new DataView(a.buffer, a.byteOffset, SIGACTION.size);
        const handler = v.getBigUint64(SIGACTION.fields.sa_handler.offset, true);
        const flags = v.getBigUint64(SIGACTION.fields.sa_flags.offset, true);
        if (handler > SIG_IGN && (flags & BigInt(SA.RESTORER)) === 0n) {
          a = a.slice(0, SIGACTION.size);
          const w = new DataView(a.buffer);
          w.setBigUint64(SIGACTION.fields.sa_flags.offset, flags | BigInt(SA.RESTORER), true);
          w.setBigUint64(SIGACTION.fields.sa_restorer.offset, restorer, true);
        }
      }
      return int(sys(SYS.rt_sigaction, sig, addr(a), addr(old), SIGSET_BYTES));
    },
    open: (path, flags, mode) => int(sys(SYS.openat, AT_FDCWD, addr(path), flags, mode)),
    close: (fd) => int(sys(SYS.close, fd)),
    mmap: (at, length, prot, flags, fd, offset) =>
      Deno.UnsafePointer.create(BigInt.asUintN(64, sys(SYS.mmap, ptr(at), length, prot, flags, fd, offset))),
    munmap: (at, length) => int(sys(SYS.munmap, ptr(at), length)),
    mprotect: (at, length, prot) => int(sys(SYS.mprotect, ptr(at), length, prot)),
    gettid: () => int(sys(SYS.gettid)),
    getpid: () => int(sys(SYS.getpid)),
    read: (fd, buf, count) => sys(SYS.read, fd, addr(buf), count),
    write: (fd, buf, count) => sys(SYS.write, fd, addr(buf), count),
    pread: (fd, buf, count, offset) => sys(SYS.pread64, fd, addr(buf), count, offset),
    pwrite: (fd, buf, count, offset) => sys(SYS.pwrite64, fd, addr(buf), count, offset),
    lseek: (fd, offset, whence) => sys(SYS.lseek, fd, offset, whence),
    fstat: (fd, buf) => int(sys(SYS.fstat, fd, addr(buf))),
    fcntl: (fd, cmd, arg) => int(sys(SYS.fcntl, fd, cmd, arg)),
    fallocate: (fd, mode, offset, len) => int(sys(SYS.fallocate, fd, mode, offset, len)),
    ftruncate: (fd, length) => int(sys(SYS.ftruncate, fd, length)),
    madvise: (at, length, advice) => int(sys(SYS.madvise, ptr(at), length, advice)),
    mincore: (at, length, vec) => int(sys(SYS.mincore, ptr(at), length, addr(vec))),
    readlink: (path, buf, size) => sys(SYS.readlinkat, AT_FDCWD, addr(path), addr(buf), size),
    memfd_create: (name, flags) => int(sys(SYS.memfd_create, addr(name), flags)),
    tgkill: (tgid, tid, sig) => int(sys(SYS.tgkill, tgid, tid, sig)),
    timer_create: (clock, sev, id) => int(sys(SYS.timer_create, clock, addr(sev), addr(id))),
    timer_settime: (id, flags, value, old) => int(sys(SYS.timer_settime, id, flags, addr(value), addr(old))),
    timer_delete: (id) => int(sys(SYS.timer_delete, id)),
  };
}

/**
 * The errno of this isolate's last failed call through {@link libc} (a syscall: the kernel's own
 * answer). Read it right after the failing call.
 */
export function errno(): number {
  return lastErrno;
}

/** The C library's message for an errno value. */
export function strerror(n: number): string {
  const p = libc().strerror(n);
  return p ? Deno.UnsafePointerView.getCString(p) : `errno ${n}`;
}

/** A NUL-terminated C string. */
export function cstr(s: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(s + "\0");
}

/** open(2) flags and mmap(2) constants (x86_64 Linux). */
export const O = Object.freeze({
  RDONLY: 0,
  WRONLY: 1,
  RDWR: 2,
  NONBLOCK: 0o4000,
  CLOEXEC: 0o2000000,
  PATH: 0o10000000,
});
/** lseek(2) whence values. */
export const SEEK = Object.freeze({ SET: 0, CUR: 1, END: 2 });
/** mmap protection bits. */
export const PROT = Object.freeze({ NONE: 0, READ: 1, WRITE: 2, EXEC: 4 });
/** mmap flags. */
export const MAP = Object.freeze({ SHARED: 0x01, PRIVATE: 0x02, FIXED: 0x10, ANONYMOUS: 0x20, NORESERVE: 0x4000 });
/** madvise advice values kvmsh uses. */
export const MADV = Object.freeze({
  DONTNEED: 4,
  REMOVE: 9,
  HUGEPAGE: 14,
  NOHUGEPAGE: 15,
  POPULATE_READ: 22,
  POPULATE_WRITE: 23,
  COLLAPSE: 25,
});
/** Signal numbers (x86_64 Linux). */
export const SIG = Object.freeze({ INT: 2, USR2: 12 });
/** rt_sigaction(2)'s sigsetsize: the kernel's sigset_t on x86_64 (64 signals). */
export const SIGSET_BYTES = 8;
/** sigaction(2) flags. */
export const SA = Object.freeze({ SIGINFO: 0x4, RESTORER: 0x04000000, ONSTACK: 0x08000000, RESTART: 0x10000000 });
/** `SIG_DFL` and `SIG_IGN` as sa_handler values. */
export const SIG_DFL = 0n;
export const SIG_IGN = 1n;
/** timer_create(2): clock and notification. */
export const CLOCK_MONOTONIC = 1;
export const SIGEV_THREAD_ID = 4;
/** fcntl commands. */
export const F = Object.freeze({ GETFD: 1, SETFD: 2, FD_CLOEXEC: 1 });
/** `MAP_FAILED`, `(void *)-1`. */
export const MAP_FAILED = 0xffffffffffffffffn;
/** sysconf(_SC_PAGESIZE). */
export const SC_PAGESIZE = 30;

/** The page size of this host. */
export function pageSize(): number {
  return Number(libc().sysconf(SC_PAGESIZE));
}
