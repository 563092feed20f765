/**
 * The C library through `Deno.dlopen`: the syscalls kvmsh makes, typed once. Functions here
 * return the C result unchanged; callers read {@link errno} right after a failing call, on the
 * same thread, before anything else can overwrite it.
 * @module
 */

/**
 * Ready when libc() first runs: what every process uses (opening KVM, the ioctls, mapping kvm_run and
 * guest memory, loading a guest, the kick's signal handler and deadline timer). These are plain
 * properties of the object libc() returns (the hot paths: KVM_RUN, KVM_CHECK_EXTENSION). The C
 * prototypes as kvmsh calls them; {@link BOUND} says how each is reached.
 */
const CORE = {
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  /**
   * ioctl with an integer argument (or none). The request goes as a u32 (a plain number, no
   * BigInt per call): the kernel reads it as `unsigned int cmd` whatever the register's top half.
   */
  ioctl: { parameters: ["i32", "u32", "u64"], result: "i32" },
  /**
   * ioctl with a pointer to a struct (kvm/fd.ts passes a JS buffer's address): a "buffer"
   * parameter costs Deno ~0.1 ms more to compile at every start than a pointer.
   */
  ioctl_buf: { name: "ioctl", parameters: ["i32", "u32", "pointer"], result: "i32" },
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  /**
   * Guest memory writes (kvm/mapping.ts: loading a guest, `write`), through syscall(). The iovec
   * arrays go by address: a Mapping's are made once (their address with them).
   */
  process_vm_writev: { parameters: ["i32", "pointer", "u64", "pointer", "u64", "u64"], result: "isize" },
  gettid: { parameters: [], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  fstat: { parameters: ["i32", "buffer"], result: "i32" },
  /** Stopping a guest (kvm/kick.ts): the kick's signal handlers, its code page, the deadline timer. */
  sigaction: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  mprotect: { parameters: ["pointer", "usize", "i32"], result: "i32" },
  timer_create: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  timer_settime: { parameters: ["u64", "i32", "buffer", "buffer"], result: "i32" },
  timer_delete: { parameters: ["u64"], result: "i32" },
  /**
   * errno's address: bound eagerly, since binding a symbol (dlopen) on the way to reading errno
   * after a failed call could overwrite it.
   */
  __errno_location: { parameters: [], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

/**
 * The rest, each bound on its own first use: Deno compiles a call stub per symbol when it opens a
 * library (~0.15 ms each), which a short `kvmsh -c "vm create; run …"` process need not pay for
 * the 24 it never calls (guest memory reads, bulk memory, strerror, files, /proc). A symbol is bound before its
 * call, so errno after the call is the call's.
 */
const LAZY = {
  /**
   * Guest memory reads (ucalls, `x/`) and the kick's check of a SIGINT handler it replaces (when
   * not SIG_DFL): a compiled stub, bound on the first read — a plain `run` of a guest reads none.
   * The iovec arrays go by address, like process_vm_writev's.
   */
  process_vm_readv: { parameters: ["i32", "pointer", "u64", "pointer", "u64", "u64"], result: "isize" },
  /** (kvmsh itself reads `Deno.pid`.) */
  getpid: { parameters: [], result: "i32" },
  madvise: { parameters: ["pointer", "usize", "i32"], result: "i32" },
  /** Which pages of a range are resident (tests measure what a bulk access faulted in). */
  mincore: { parameters: ["pointer", "usize", "buffer"], result: "i32" },
  memset: { parameters: ["pointer", "i32", "usize"], result: "pointer" },
  memcpy: { parameters: ["pointer", "pointer", "usize"], result: "pointer" },
  /** memcpy into a JS buffer (bulk reads of a mapping). */
  memcpy_to_buf: { name: "memcpy", parameters: ["buffer", "pointer", "usize"], result: "pointer" },
  /** memcpy from a JS buffer (bulk writes to a mapping). */
  memcpy_from_buf: { name: "memcpy", parameters: ["pointer", "buffer", "usize"], result: "pointer" },
  /** memcmp of mapped memory against a JS buffer (bulk verify). */
  memcmp: { parameters: ["pointer", "buffer", "usize"], result: "i32" },
  tgkill: { parameters: ["i32", "i32", "i32"], result: "i32" },
  sysconf: { parameters: ["i32"], result: "i64" },
  strerror: { parameters: ["i32"], result: "pointer" },
  fallocate: { parameters: ["i32", "i32", "i64", "i64"], result: "i32" },
  ftruncate: { parameters: ["i32", "i64"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "i64"], result: "i32" },
  lseek: { parameters: ["i32", "i64", "i32"], result: "i64" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  pread: { name: "pread64", parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  pwrite: { name: "pwrite64", parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  opendir: { parameters: ["buffer"], result: "pointer" },
  readdir64: { parameters: ["pointer"], result: "pointer" },
  closedir: { parameters: ["pointer"], result: "i32" },
  readlink: { parameters: ["buffer", "buffer", "usize"], result: "isize" },
  memfd_create: { parameters: ["buffer", "u32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

const SYMBOLS = { ...CORE, ...LAZY } as const satisfies Deno.ForeignLibraryInterface;

/** The library kvmsh loads: glibc's soname on Linux. */
export const LIBC_PATH = "libc.so.6";

type Symbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
let syms: Symbols | undefined;

/**
 * The loaded C library (opened on first use, once per isolate). CORE's functions are own data
 * properties of the returned object, bound in one dlopen; a LAZY one is an accessor on its
 * prototype that binds that symbol alone on first use and replaces itself there by the function,
 * so the object's own shape never changes (the hot paths' property loads stay monomorphic).
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
  syms = Object.assign(Object.create(lazy), bindCore()) as Symbols;
  return syms;
}

/**
 * x86_64 Linux syscall numbers kvmsh uses directly: the CORE functions it calls through libc's
 * `syscall()` (each is called a few times per process, not per exit or per access, and binding
 * them as symbols cost each process ~0.08 ms apiece: Deno compiles a call stub per symbol when it
 * opens a library), and those the kick's signal handler makes (kvm/kick_code.ts). `open` is
 * `openat(AT_FDCWD, …)`, as glibc's is; the timer calls use the kernel's timer id, as glibc's do
 * for SIGEV_THREAD_ID.
 */
export const SYS = Object.freeze({
  read: 0,
  close: 3,
  fstat: 5,
  mmap: 9,
  mprotect: 10,
  munmap: 11,
  rt_sigaction: 13,
  kill: 62,
  gettid: 186,
  timer_create: 222,
  timer_settime: 223,
  timer_delete: 226,
  tgkill: 234,
  openat: 257,
  process_vm_writev: 311,
});
/** openat(2)'s "relative to the working directory". */
const AT_FDCWD = -100;

/**
 * How CORE is bound: every function is declared to return an 8-byte struct, which makes Deno call
 * it through libffi (~1 µs a call) with nothing compiled. The x86-64 SysV ABI returns that struct
 * in RAX, exactly where the C function puts its int, long or pointer. The hot one, ioctl, gets
 * Deno's compiled call stub (~0.3 µs less a call; V8's fast call once the caller is optimized)
 * from its {@link IOCTL_STUB_AFTER}th call: compiling it (and the compiler's first use in the
 * process) cost every start ~0.25 ms, which a short `kvmsh -c "vm create; run …"` (~15 ioctls)
 * never earns back, while a loop of exits or ioctls earns it back within a few hundred calls.
 */
const RAX = { struct: ["u64"] } as const;
const BOUND = {
  ioctl: { ...CORE.ioctl, result: RAX },
  sigaction: { ...CORE.sigaction, result: RAX },
  __errno_location: { ...CORE.__errno_location, result: RAX },
  /** `long syscall(long number, ...)`, always given six arguments (unused ones 0). */
  syscall: { parameters: ["i64", "i64", "i64", "i64", "i64", "i64", "i64"], result: RAX },
} as const satisfies Deno.ForeignLibraryInterface;

type CoreSymbols = Deno.DynamicLibrary<typeof CORE>["symbols"];

/** ioctl calls made through libffi before ioctl's compiled stub is bound (see {@link BOUND}). */
export const IOCTL_STUB_AFTER = 256;
type Arg = number | bigint;

/** What RAX held, as the 8 bytes Deno returns for a struct result. */
function rax(bytes: Uint8Array<ArrayBuffer>): bigint {
  return new BigInt64Array(bytes.buffer)[0];
}

/** An address for a syscall argument: a JS buffer's (null: 0) or a pointer's. */
function addr(b: AllowSharedBufferSource | null): Arg {
  return b === null ? 0 : Deno.UnsafePointer.value(Deno.UnsafePointer.of(b as BufferSource));
}

function bindCore(): CoreSymbols {
  const raw = Deno.dlopen(LIBC_PATH, BOUND).symbols;
  const call = raw.syscall as unknown as (...args: Arg[]) => Uint8Array<ArrayBuffer>;
  const sys = (nr: number, a: Arg = 0, b: Arg = 0, c: Arg = 0, d: Arg = 0, e: Arg = 0, f: Arg = 0) =>
    rax(call(nr, a, b, c, d, e, f));
  const int = (r: bigint) => Number(BigInt.asIntN(32, r));
  const ptr = (p: Deno.PointerValue) => Deno.UnsafePointer.value(p);
  let ioctlCalls = 0;
  let stub: CoreSymbols["ioctl"] | undefined;
  const viaFfi = (fd: number, req: number, arg: bigint) => {
    // The IOCTL_STUB_AFTER-th call binds the stub first (errno after the call is still the call's).
    if (++ioctlCalls === IOCTL_STUB_AFTER) stub = Deno.dlopen(LIBC_PATH, { ioctl: CORE.ioctl }).symbols.ioctl;
    return int(rax(raw.ioctl(fd, req, arg) as Uint8Array<ArrayBuffer>));
  };
  // One function for every caller, whichever way it goes: the call sites stay monomorphic, and the
  // stub is called from one site that only ever sees the stub, where V8 makes it a fast call (a
  // property swapped from one function to the other made callers' sites polymorphic: no fast
  // call, KVM_CHECK_EXTENSION 205 → 460 ns).
  const ioctl = (fd: number, req: number, arg: bigint) =>
    stub !== undefined ? stub(fd, req, arg) : viaFfi(fd, req, arg);
  return {
    ioctl,
    // The same C function: the struct's address as the integer argument (~0.1 µs a call, on an
    // ioctl that takes microseconds; a second stub cost every start ~0.1 ms).
    ioctl_buf: (fd, req, p) => ioctl(fd, req, BigInt(Deno.UnsafePointer.value(p))),
    process_vm_writev: (pid, local, nlocal, remote, nremote, flags) =>
      sys(SYS.process_vm_writev, pid, ptr(local), nlocal, ptr(remote), nremote, flags),
    sigaction: (sig, act, old) => int(rax(raw.sigaction(sig, act, old) as Uint8Array<ArrayBuffer>)),
    __errno_location: () =>
      Deno.UnsafePointer.create(BigInt.asUintN(64, rax(raw.__errno_location() as Uint8Array<ArrayBuffer>))),
    open: (path, flags, mode) => int(sys(SYS.openat, AT_FDCWD, addr(path), flags, mode)),
    close: (fd) => int(sys(SYS.close, fd)),
    mmap: (at, length, prot, flags, fd, offset) =>
      Deno.UnsafePointer.create(BigInt.asUintN(64, sys(SYS.mmap, ptr(at), length, prot, flags, fd, offset))),
    munmap: (at, length) => int(sys(SYS.munmap, ptr(at), length)),
    mprotect: (at, length, prot) => int(sys(SYS.mprotect, ptr(at), length, prot)),
    gettid: () => int(sys(SYS.gettid)),
    read: (fd, buf, count) => sys(SYS.read, fd, addr(buf), count),
    fstat: (fd, buf) => int(sys(SYS.fstat, fd, addr(buf))),
    timer_create: (clock, sev, id) => int(sys(SYS.timer_create, clock, addr(sev), addr(id))),
    timer_settime: (id, flags, value, old) => int(sys(SYS.timer_settime, id, flags, addr(value), addr(old))),
    timer_delete: (id) => int(sys(SYS.timer_delete, id)),
  };
}

let errnoView: Deno.UnsafePointerView | undefined;

/** The calling thread's errno. Read it right after the failing call. */
export function errno(): number {
  errnoView ??= new Deno.UnsafePointerView(libc().__errno_location()!);
  return errnoView.getInt32(0);
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
/** sigaction(2) flags. */
export const SA = Object.freeze({ SIGINFO: 0x4, ONSTACK: 0x08000000, RESTART: 0x10000000 });
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
