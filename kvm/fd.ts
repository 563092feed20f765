/**
 * Small helpers over file descriptors: ioctl that throws KvmError with the ioctl's name,
 * and close-once bookkeeping shared by every object that owns an fd.
 * @module
 */

import { errno, F, libc } from "../ffi/libc.ts";
import { ioctlName } from "../ffi/uapi.ts";
import { CallArgs, ClosedError, KvmError } from "./errors.ts";

// BigInt(number) costs ~25 ns per call here; small ioctl arguments are converted once and
// reused (hot path: KVM_CHECK_EXTENSION). Filled on first use (1024 conversions at load cost
// ~0.3 ms of every start); packed, so a lookup stays fast.
const SMALL_BIG: (bigint | undefined)[] = new Array<bigint | undefined>(1024).fill(undefined);

/** `arg` as a bigint, without allocating for small non-negative integers. */
export function argBig(arg: number | bigint): bigint {
  if (typeof arg === "bigint") return arg;
  return arg >>> 0 === arg && arg < SMALL_BIG.length ? SMALL_BIG[arg] ??= BigInt(arg) : BigInt(arg);
}

/**
 * ioctl with an integer argument; throws KvmError on failure. `args` (what the error shows) may
 * be a function of `arg`, called only on failure: a hot caller passes one defined once and so
 * allocates nothing per call.
 */
export function ioctlInt(
  fd: number,
  req: number,
  arg: number | bigint = 0,
  args?: CallArgs | ((arg: number | bigint) => CallArgs),
): number {
  const r = libc().ioctl(fd, req, argBig(arg));
  if (r < 0) throw ioctlError(req, arg, args);
  return r;
}

/**
 * The KvmError of a failed ioctl (errno read first). Out of line: a small ioctlInt inlines
 * whole into its hot callers (the error path inside it cost KVM_CHECK_EXTENSION ~10 ns a call).
 */
function ioctlError(
  req: number,
  arg: number | bigint,
  args?: CallArgs | ((arg: number | bigint) => CallArgs),
): KvmError {
  const e = errno();
  return new KvmError({
    syscall: "ioctl",
    op: ioctlName(req),
    errno: e,
    args: typeof args === "function" ? args(arg) : args ?? { arg },
  });
}

/** ioctl with a pointer to `buf`; throws KvmError on failure. */
export function ioctlBuf(fd: number, req: number, buf: Uint8Array<ArrayBuffer>, args?: CallArgs): number {
  const r = libc().ioctl_buf(fd, req, Deno.UnsafePointer.of(buf));
  if (r < 0) {
    const e = errno(); // before anything else runs (ioctlName builds its map on first use)
    throw new KvmError({ syscall: "ioctl", op: ioctlName(req), errno: e, args: args ?? {} });
  }
  return r;
}

/** An owned file descriptor, closed exactly once. */
export class OwnedFd {
  #fd: number;
  constructor(fd: number, readonly what: string) {
    this.#fd = fd;
  }

  /** The fd number; throws ClosedError after close. */
  get fd(): number {
    if (this.#fd < 0) throw new ClosedError(this.what);
    return this.#fd;
  }

  /** True until closed. */
  get open(): boolean {
    return this.#fd >= 0;
  }

  /** The number even when closed (-1), for listings. */
  get raw(): number {
    return this.#fd;
  }

  /** close(2), once. */
  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    if (libc().close(fd) < 0) throw new KvmError({ syscall: "close", errno: errno(), args: { fd, what: this.what } });
  }
}

/** Sets or clears FD_CLOEXEC on `fd` (fcntl F_SETFD). */
export function setCloexec(fd: number, on: boolean): void {
  if (libc().fcntl(fd, F.SETFD, on ? BigInt(F.FD_CLOEXEC) : 0n) < 0) {
    throw new KvmError({ syscall: "fcntl", errno: errno(), args: { fd, cloexec: on } });
  }
}
