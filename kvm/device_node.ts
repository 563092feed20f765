/**
 * Who may open a device node: its owner, group and mode, read without opening it for I/O (open
 * with O_PATH needs no permission on the node, then fstat). Deno's own stat refuses /dev here.
 * Names come from /etc/passwd and /etc/group when readable (else the numbers; 0 is root).
 * Used by the hint of a refused open of /dev/kvm.
 * @module
 */

import { cstr, libc, O } from "../ffi/libc.ts";
import { STAT } from "../ffi/structs.ts";
import { decode } from "../ffi/struct_codec.ts";

/** A node's ownership and permission bits. */
export interface NodeOwner {
  uid: number;
  gid: number;
  /** Permission bits (`mode & 0o7777`). */
  mode: number;
  /** User and group names (from /etc/passwd, /etc/group), else the numbers. */
  user: string;
  group: string;
}

function nameOf(file: string, id: number): string {
  if (id === 0) return "root"; // uid and gid 0 are root's everywhere
  try {
    for (const line of Deno.readTextFileSync(file).split("\n")) {
      const f = line.split(":");
      if (f.length >= 3 && Number(f[2]) === id && f[2] !== "") return f[0];
    }
  } catch { /* no such file, or no read permission: the number */ }
  return String(id);
}

/** The owner, group and mode of `path`, or undefined when it cannot be looked at (missing, no search permission). */
export function nodeOwner(path: string): NodeOwner | undefined {
  const l = libc();
  const fd = l.open(cstr(path), O.PATH | O.CLOEXEC, 0);
  if (fd < 0) return undefined;
  try {
    const buf = new Uint8Array(STAT.size);
    if (l.fstat(fd, buf) < 0) return undefined;
    const s = decode(STAT, buf);
    const uid = Number(s.st_uid), gid = Number(s.st_gid);
    return {
      uid,
      gid,
      mode: Number(s.st_mode) & 0o7777,
      user: nameOf("/etc/passwd", uid),
      group: nameOf("/etc/group", gid),
    };
  } finally {
    l.close(fd);
  }
}
