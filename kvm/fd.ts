/**
 * Small helpers over file descriptors: ioctl that throws KvmError with the ioctl's name,
 * and close-once bookkeeping shared by every object that owns an fd.
 * @module
 */

import { errno, libc } from "../ffi/libc.ts";
import { ioctlName } from "../ffi/uapi.ts";
import { CallArgs, ClosedError, KvmError } from "./errors.ts";

/** ioctl with an integer argument; throws KvmError on failure. */
export function ioctlInt(fd: number, req: number, arg: number | bigint = 0, args?: CallArgs): number {
  const r = libc().ioctl(fd, BigInt(req), BigInt(arg));
  if (r < 0) throw new KvmError({ syscall: "ioctl", op: ioctlName(req), errno: errno(), args: args ?? { arg } });
  return r;
}

/** ioctl with a pointer to `buf`; throws KvmError on failure. */
export function ioctlBuf(fd: number, req: number, buf: Uint8Array<ArrayBuffer>, args?: CallArgs): number {
  const r = libc().ioctl_buf(fd, BigInt(req), buf);
  if (r < 0) throw new KvmError({ syscall: "ioctl", op: ioctlName(req), errno: errno(), args: args ?? {} });
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
