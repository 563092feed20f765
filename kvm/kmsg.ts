/**
 * The kernel log as evidence: `/dev/kmsg` read from a scenario's start, every record the kernel
 * printed during it, and the splats (WARN, BUG, Oops, lockdep, sanitizers, RCU stalls, hung tasks,
 * lockups …, see {@link SPLAT_PATTERNS}) that fail a scenario unless it expects them. The reader is behind {@link KernelLogSource}, so a test can feed it lines.
 * @module
 */

import { cstr, errno, libc, O, SEEK } from "../ffi/libc.ts";
import { ERRNO, errnoName } from "../ffi/errno.ts";

/** One /dev/kmsg record: `prio,seq,usec,flags;text` plus optional ` KEY=value` lines. */
export interface KmsgRecord {
  /** Syslog level 0 (emerg) … 7 (debug). */
  level: number;
  /** Syslog facility (0 = kernel). */
  facility: number;
  /** Sequence number. */
  seq: number;
  /** Microseconds since boot. */
  usec: number;
  /** The message. */
  text: string;
  /** Dictionary lines (`SUBSYSTEM=…`, `DEVICE=…`). */
  dict: string[];
}

/** Where log records come from: the real /dev/kmsg or a fake in tests. */
export interface KernelLogSource {
  /** Forgets everything printed so far: the next drain starts here. */
  start(): void;
  /** Every record printed since start (or the last drain). */
  drain(): KmsgRecord[];
  /** Releases the source. */
  close(): void;
  /** Why the source cannot read (no permission, no /dev/kmsg), if so. */
  readonly unavailable?: string;
}

/** Parses one /dev/kmsg read; undefined when the text is not a record. */
export function parseKmsgRecord(raw: string): KmsgRecord | undefined {
  const semi = raw.indexOf(";");
  if (semi < 0) return undefined;
  const head = raw.slice(0, semi).split(",");
  if (head.length < 3 || !/^\d+$/.test(head[0])) return undefined;
  const [first, ...rest] = raw.slice(semi + 1).replace(/\n$/, "").split("\n");
  const prio = Number(head[0]);
  return {
    level: prio & 7,
    facility: prio >> 3,
    seq: Number(head[1]),
    usec: Number(head[2]),
    text: unescapeKmsg(first),
    dict: rest.map((l) => l.trim()).filter((l) => l.length > 0),
  };
}

/** /dev/kmsg escapes non-printable bytes as `\xNN`. */
function unescapeKmsg(s: string): string {
  return s.replace(/\\x([0-9a-f]{2})/g, (_m, h) => String.fromCharCode(parseInt(h, 16)));
}

/**
 * The start of a kernel log line: the text itself, or as dmesg shows it (`[  12.345678] `, with the
 * caller id `[T123] ` of CONFIG_PRINTK_CALLER). Splat patterns are anchored here, so a message
 * that merely contains a word like "Oops" or "WARNING" after its own prefix is not a splat.
 */
const HEAD = String.raw`^(?:\[\s*\d+\.\d+\]\s*)?(?:\[\s*[CT]\d+\]\s*)?`;

function at(pattern: string): RegExp {
  return new RegExp(HEAD + pattern);
}

/**
 * What marks a kernel splat in a log line, with the kind it names: the first line of each report
 * as the kernel prints it. More specific kinds come first (a KASAN report starts `BUG: KASAN:`,
 * a lockdep report `WARNING: possible …`).
 */
export const SPLAT_PATTERNS: readonly { kind: string; re: RegExp }[] = [
  // mm/kasan, mm/kfence, mm/kmsan: "BUG: KASAN: slab-out-of-bounds in …"; lib/ubsan.c: "UBSAN: … in …".
  { kind: "KASAN", re: at(String.raw`BUG: KASAN: `) },
  { kind: "KFENCE", re: at(String.raw`BUG: KFENCE: `) },
  { kind: "KMSAN", re: at(String.raw`BUG: KMSAN: `) },
  { kind: "UBSAN", re: at(String.raw`UBSAN: \S`) },
  // kernel/locking/lockdep.c and RCU-lockdep: "WARNING: possible recursive locking detected" …
  {
    kind: "lockdep",
    re: at(
      String
        .raw`WARNING: (?:possible (?:recursive|circular) locking|inconsistent lock state|possible irq lock inversion|` +
        String
          .raw`suspicious RCU usage|bad unlock balance|held lock freed|lock held when returning|nested lock was not taken)`,
    ),
  },
  // kernel/sched/core.c: might_sleep() and schedule() in atomic context.
  {
    kind: "sleep in atomic",
    re: at(String.raw`BUG: (?:sleeping function called from invalid context|scheduling while atomic)`),
  },
  // kernel/watchdog.c (pr_fmt "watchdog: ").
  { kind: "soft lockup", re: at(String.raw`(?:watchdog: )?BUG: soft lockup`) },
  { kind: "hard lockup", re: at(String.raw`(?:watchdog: )?(?:CPU\d+: )?Watchdog detected hard LOCKUP`) },
  // kernel/rcu/tree_stall.h, tasks.h (pr_fmt "rcu: "): "INFO: rcu_sched detected stalls on CPUs/tasks:",
  // "INFO: rcu_preempt self-detected stall on CPU".
  { kind: "RCU stall", re: at(String.raw`(?:rcu: )?INFO: rcu_\w+ (?:self-)?detected stalls?\b`) },
  // kernel/hung_task.c: "INFO: task qemu:1234 blocked for more than 122 seconds."
  { kind: "hung task", re: at(String.raw`INFO: task .+ blocked for more than \d+ seconds`) },
  // include/asm-generic/bug.h __WARN: "WARNING: CPU: 1 PID: 42 at file:line func" (and newer "WARNING: file:line at …").
  { kind: "WARN", re: at(String.raw`WARNING: `) },
  // lib/bug.c BUG(): "kernel BUG at file:line!"; other reports: "BUG: kernel NULL pointer dereference" …
  { kind: "BUG", re: at(String.raw`(?:kernel BUG at |BUG: )`) },
  // arch/x86/kernel/dumpstack.c "Oops: …: 0002 [#1]", mips "Oops[#1]:", arm/arm64 die() "Internal error: Oops…",
  // arm/arm64 page faults "Unable to handle kernel NULL pointer dereference / paging request at virtual address".
  {
    kind: "Oops",
    re: at(
      String
        .raw`(?:Oops(?:: |\[#\d+\])|Internal error: Oops\b|Unable to handle kernel (?:NULL pointer dereference|paging request|` +
        String
          .raw`execute from non-executable memory|access to user memory|read from unreadable memory|write to read-only memory|` +
        String.raw`\S+ at virtual address))`,
    ),
  },
  // Older x86 die(): "general protection fault: 0000 [#1] SMP" (a user process's GPF is "traps: prog[pid] general …").
  { kind: "GPF", re: at(String.raw`general protection fault\b`) },
  { kind: "Call Trace", re: at(String.raw`Call Trace:`) },
  { kind: "panic", re: at(String.raw`Kernel panic - not syncing`) },
];

/** The splat kind a log line shows, or undefined for an ordinary line. */
export function splatKind(text: string): string | undefined {
  return SPLAT_PATTERNS.find((p) => p.re.test(text))?.kind;
}

/** `[  12.345678] text` as dmesg prints it. */
export function formatKmsg(r: KmsgRecord): string {
  const s = (r.usec / 1e6).toFixed(6).padStart(12, " ");
  return `[${s}] ${r.text}`;
}

const BUF = 16384;

/**
 * The real /dev/kmsg, opened O_RDONLY|O_NONBLOCK through libc. `start` seeks to the end
 * (SEEK_END), so only records printed afterwards are read; `drain` reads until EAGAIN.
 */
export class KmsgReader implements KernelLogSource {
  #fd = -1;
  #buf = new Uint8Array(BUF);
  /** Records lost because the ring buffer wrapped before they were read (EPIPE). */
  lost = 0;
  readonly unavailable?: string;

  constructor(readonly path = "/dev/kmsg") {
    const fd = libc().open(cstr(path), O.RDONLY | O.NONBLOCK | O.CLOEXEC, 0);
    if (fd < 0) this.unavailable = `cannot open ${path} (${errnoName(errno())})`;
    else this.#fd = fd;
  }

  start(): void {
    if (this.#fd < 0) return;
    libc().lseek(this.#fd, 0n, SEEK.END);
  }

  drain(): KmsgRecord[] {
    const out: KmsgRecord[] = [];
    if (this.#fd < 0) return out;
    const l = libc();
    const dec = new TextDecoder();
    for (;;) {
      const n = Number(l.read(this.#fd, this.#buf, BigInt(BUF)));
      if (n < 0) {
        const e = errno();
        if (e === ERRNO.EPIPE) {
          this.lost++;
          continue;
        }
        if (e === ERRNO.EINTR) continue;
        break; // EAGAIN: nothing more
      }
      if (n === 0) break;
      const rec = parseKmsgRecord(dec.decode(this.#buf.subarray(0, n)));
      if (rec) out.push(rec);
    }
    return out;
  }

  close(): void {
    if (this.#fd >= 0) libc().close(this.#fd);
    this.#fd = -1;
  }
}

/** A kernel log fed by hand: `push` lines as the kernel would print them (tests of the evidence path). */
export class FakeKernelLog implements KernelLogSource {
  #pending: KmsgRecord[] = [];
  #seq = 0;

  /** Adds a record: a raw kmsg line (`4,12,345;text`) or plain text (level 4). */
  push(line: string): void {
    const rec = parseKmsgRecord(line) ??
      { level: 4, facility: 0, seq: this.#seq, usec: this.#seq * 1000, text: line, dict: [] };
    this.#seq++;
    this.#pending.push(rec);
  }

  start(): void {
    this.#pending = [];
  }

  drain(): KmsgRecord[] {
    const out = this.#pending;
    this.#pending = [];
    return out;
  }

  close(): void {}
}
