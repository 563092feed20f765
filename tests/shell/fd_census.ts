/**
 * Counting another process's open fds for the fd-leak checks: `/proc/<pid>/fd` listed and each
 * link read through ffi/procfs (Deno's own readLink refuses /proc without --allow-all). Every fd
 * counts — files, pipes, sockets, anon inodes — by its *kind* (the link target with inode numbers
 * replaced), so a dup that moves to another number is no change but any extra fd is.
 * @module
 */

import { listDir, readLink, readProcText } from "../../ffi/procfs.ts";

/** The link targets of a process's fds (`socket:[123]`, `/dev/kvm`, `anon_inode:kvm-vcpu:0`). */
export function fdTargets(pid: number): string[] {
  const fds = listDir(`/proc/${pid}/fd`);
  if (!fds) throw new Error(`cannot list /proc/${pid}/fd`);
  // An fd closed between listing and readlink is reported as such (a snapshot of a busy process
  // is retried by stableFdTargets, never silently dropped).
  return fds.map((fd) => readLink(`/proc/${pid}/fd/${fd}`) ?? `(fd ${fd} closed while listing)`);
}

/** An fd's kind: its target with numbers replaced, so `socket:[123]` and `socket:[456]` are one kind. */
export function fdKind(target: string): string {
  return target.replace(/\d+/g, "N");
}

/**
 * The difference between two snapshots as kinds, one entry per fd: `+ socket:[N]` for each fd
 * of that kind more than before, `- pipe:[N]` for each fewer. Empty when nothing leaked.
 */
export function fdDiff(before: string[], after: string[]): string[] {
  const count = new Map<string, number>();
  for (const t of before) count.set(fdKind(t), (count.get(fdKind(t)) ?? 0) - 1);
  for (const t of after) count.set(fdKind(t), (count.get(fdKind(t)) ?? 0) + 1);
  const out: string[] = [];
  for (const [k, n] of [...count].sort(([a], [b]) => (a < b ? -1 : 1))) {
    for (let i = 0; i < Math.abs(n); i++) out.push(`${n > 0 ? "+" : "-"} ${k}`);
  }
  return out;
}

/**
 * A snapshot taken when the fd table has settled: two reads 100 ms apart that agree (the
 * watchdog worker of a run closes its fds on its own thread a moment after `reset`). With
 * `like`, keeps reading (up to `timeoutMs`) until the table matches it, for fds closed by
 * an idle timer; returns the last read either way, so a real leak still shows.
 */
export async function stableFdTargets(pid: number, like?: string[], timeoutMs = 5000): Promise<string[]> {
  const end = Date.now() + timeoutMs;
  let prev = fdTargets(pid);
  for (;;) {
    await new Promise((r) => setTimeout(r, 100));
    const cur = fdTargets(pid);
    const settled = fdDiff(prev, cur).length === 0 && !cur.some((t) => t.includes("closed while listing"));
    if (settled && (like === undefined || fdDiff(like, cur).length === 0)) return cur;
    if (Date.now() > end) return cur;
    prev = cur;
  }
}

/**
 * How many of a process's sockets are blocking (no O_NONBLOCK in /proc/<pid>/fdinfo): the Deno
 * runtime's own late socketpair is the only such pair in kvmsh (tokio's signal pair and every
 * other socket Deno makes are non-blocking). See RUNTIME_SETTLE_MS in fuzz_test.ts.
 */
export function blockingSockets(pid: number): number {
  const O_NONBLOCK = 0o4000;
  return (listDir(`/proc/${pid}/fd`) ?? []).filter((fd) => {
    if (!readLink(`/proc/${pid}/fd/${fd}`)?.startsWith("socket:")) return false;
    const flags = /^flags:\s+([0-7]+)$/m.exec(readProcText(`/proc/${pid}/fdinfo/${fd}`) ?? "")?.[1];
    return flags !== undefined && (parseInt(flags, 8) & O_NONBLOCK) === 0;
  }).length;
}
