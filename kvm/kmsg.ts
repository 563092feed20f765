/**
 * The kernel log as evidence: `/dev/kmsg` read from a scenario's start, every record the kernel
 * printed during it, and the splats (WARN, BUG, Oops, lockdep) that fail a scenario unless it
 * expects them. The reader is behind {@link KernelLogSource}, so a test can feed it lines.
 * @module
 */

import { cstr, errno, libc, O, SEEK } from "../ffi/libc.ts";
import { ERRNO } from "../ffi/errno.ts";

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

/** What marks a kernel splat in a log line, with the kind it names. */
export const SPLAT_PATTERNS: readonly { kind: string; re: RegExp }[] = [
  { kind: "WARN", re: /WARNING:/ },
  { kind: "BUG", re: /\bBUG:|kernel BUG at/ },
  { kind: "Oops", re: /\bOops\b/ },
  { kind: "lockdep", re: /possible circular locking|possible recursive locking|inconsistent lock state/ },
  { kind: "GPF", re: /general protection fault/ },
  { kind: "Call Trace", re: /Call Trace:/ },
  { kind: "sanitizer", re: /\b(?:UBSAN|KASAN|KFENCE|KMSAN):/ },
  { kind: "panic", re: /Kernel panic/ },
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
    if (fd < 0) this.unavailable = `cannot open ${path} (errno ${errno()})`;
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
