/**
 * Reading /proc and /sys through the C library. Deno's file API treats those trees as
 * privileged (it asks for --allow-all); kvmsh already holds FFI, so it reads them directly
 * and keeps its permission flags narrow.
 * @module
 */

import { cstr, libc, O } from "./libc.ts";

/** Reads a small text file (sysfs attribute, procfs entry), at most `max` bytes; undefined when it cannot be read. */
export function readProcText(path: string, max = 1 << 16): string | undefined {
  const l = libc();
  const fd = l.open(cstr(path), O.RDONLY | O.CLOEXEC, 0);
  if (fd < 0) return undefined;
  try {
    const chunks: Uint8Array[] = [];
    let total = 0;
    while (total < max) {
      const want = Math.min(4096, max - total);
      const buf = new Uint8Array(want);
      const n = Number(l.read(fd, buf, BigInt(want)));
      if (n <= 0) {
        if (n < 0 && chunks.length === 0) return undefined;
        break;
      }
      chunks.push(buf.subarray(0, n));
      total += n;
    }
    const all = new Uint8Array(total);
    let off = 0;
    for (const c of chunks) {
      all.set(c, off);
      off += c.length;
    }
    return new TextDecoder().decode(all);
  } finally {
    l.close(fd);
  }
}

/** offsetof(struct dirent64, d_name) on x86_64 glibc. */
const DIRENT64_NAME = 19;

/** Lists a directory's entries (without . and ..); undefined when it cannot be opened. */
export function listDir(path: string): string[] | undefined {
  const l = libc();
  const dir = l.opendir(cstr(path));
  if (!dir) return undefined;
  const out: string[] = [];
  try {
    for (let e = l.readdir64(dir); e; e = l.readdir64(dir)) {
      const name = Deno.UnsafePointerView.getCString(e, DIRENT64_NAME);
      if (name !== "." && name !== "..") out.push(name);
    }
  } finally {
    l.closedir(dir);
  }
  return out.sort();
}

/** The open file descriptors of this process (from /proc/self/fd, minus the one used to list it). */
export function openFds(): number[] {
  const fds = (listDir("/proc/self/fd") ?? []).map(Number).sort((a, b) => a - b);
  // opendir's own fd is the highest-numbered new one; it is listed but already closed.
  return fds.filter((fd) => readProcText(`/proc/self/fdinfo/${fd}`) !== undefined);
}

/** readlink(2): where a symlink points (`socket:[1234]` for an fd of /proc/<pid>/fd); undefined when it cannot be read. */
export function readLink(path: string): string | undefined {
  const buf = new Uint8Array(4096);
  const n = Number(libc().readlink(cstr(path), buf, BigInt(buf.length)));
  if (n < 0) return undefined;
  return new TextDecoder().decode(buf.subarray(0, n));
}
