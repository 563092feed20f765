/**
 * Guest images from host files, looked at through an O_PATH fd and read with open/fstat/read
 * through ffi/ (the syscalls kvmsh makes anyway) rather than Deno's file API: a short
 * `kvmsh -c "vm create; run guest.bin"` process otherwise pays ~0.5 ms for Deno's first stat
 * (its Date fields) and first file read.
 * @module
 */

import { cstr, errno, libc, O } from "../ffi/libc.ts";
import { ERRNO } from "../ffi/errno.ts";
import { STAT } from "../ffi/structs.ts";
import { KvmError } from "./errors.ts";
import { humanSize } from "./units.ts";

/** `st_mode`'s file type bits and two of their values. */
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;

/** What {@link hostFile} found at a path. */
export interface HostFileInfo {
  kind: "file" | "directory" | "other";
  /** st_size (bytes; 0 for most non-files). */
  size: number;
}

function open(path: string, flags: number): number {
  const fd = libc().open(cstr(path), flags | O.CLOEXEC, 0);
  if (fd < 0) throw new KvmError({ syscall: "open", errno: errno(), args: { path } });
  return fd;
}

function infoOf(fd: number, path: string): HostFileInfo {
  const st = new Uint8Array(STAT.size);
  if (libc().fstat(fd, st) < 0) throw new KvmError({ syscall: "fstat", errno: errno(), args: { path } });
  const dv = new DataView(st.buffer);
  const mode = dv.getUint32(STAT.fields.st_mode.offset, true) & S_IFMT;
  return {
    kind: mode === S_IFREG ? "file" : mode === S_IFDIR ? "directory" : "other",
    size: Number(dv.getBigInt64(STAT.fields.st_size.offset, true)),
  };
}

/** fstat of `path` through an O_PATH fd: no open for I/O, so a device or FIFO is never opened. */
function statPath(path: string): HostFileInfo {
  const fd = open(path, O.PATH);
  try {
    return infoOf(fd, path);
  } finally {
    libc().close(fd);
  }
}

/**
 * The kind and size of what `path` names (following symlinks), or undefined when nothing is
 * there (ENOENT, ENOTDIR). Other failures (EACCES on a directory on the way, …) throw a
 * KvmError. Looked at with an O_PATH fd: a device or FIFO is not opened (opening some has side
 * effects: a watchdog arms, a tape rewinds on close).
 */
export function hostFile(path: string): HostFileInfo | undefined {
  try {
    return statPath(path);
  } catch (e) {
    if (e instanceof KvmError && (e.errnoName === "ENOENT" || e.errnoName === "ENOTDIR")) return undefined;
    throw e;
  }
}

/** The most {@link readHostFile} reads by default: larger than any guest image makes sense. */
export const HOST_FILE_MAX = 1 << 30;

/**
 * The whole of the regular file at `path`, at most `max` bytes (default {@link HOST_FILE_MAX}).
 * Anything else (a directory, a device, a FIFO) is refused before it is opened for reading
 * (reading `/dev/zero` would not end), and so is a larger file (a sparse 100 GiB file would
 * otherwise fail as an allocation error). Failures throw a KvmError (open, fstat, read); a
 * non-regular or too large file a RangeError.
 */
export function readHostFile(path: string, max: number = HOST_FILE_MAX): Uint8Array<ArrayBuffer> {
  const notRegular = (kind: string) => new RangeError(`'${path}' is not a regular file (${kind})`);
  const tooLarge = (size: number) =>
    new RangeError(`'${path}' is ${humanSize(BigInt(size))}: more than the ${humanSize(BigInt(max))} kvmsh reads`);
  const first = statPath(path);
  if (first.kind !== "file") throw notRegular(first.kind);
  if (first.size > max) throw tooLarge(first.size);
  const fd = open(path, O.RDONLY);
  try {
    // Replaced between the two looks: look again at what was opened.
    const info = infoOf(fd, path);
    if (info.kind !== "file") throw notRegular(info.kind);
    // One byte more than the size: the end shows as a 0-byte read without growing the buffer.
    let buf = new Uint8Array(Math.max(info.size + 1, 4096));
    let n = 0;
    for (;;) {
      if (n === buf.length) {
        if (n > max) throw tooLarge(n);
        const bigger = new Uint8Array(buf.length * 2); // the file grew since fstat (or /proc)
        bigger.set(buf);
        buf = bigger;
      }
      const got = Number(libc().read(fd, buf.subarray(n), BigInt(buf.length - n)));
      if (got < 0) {
        const e = errno();
        if (e === ERRNO.EINTR) continue;
        throw new KvmError({ syscall: "read", errno: e, args: { path } });
      }
      if (got === 0) return buf.subarray(0, n);
      n += got;
    }
  } finally {
    libc().close(fd);
  }
}
