/**
 * A host mapping (mmap) and fault-safe access to it. Reads and writes go through
 * process_vm_readv/writev on our own pid: where a load would raise SIGBUS (private
 * guest_memfd memory) the kernel answers EFAULT instead, so the process never dies.
 *
 * A fault's hint fits the mapping: anonymous memory faults where its protection forbids the access
 * (a real access would SIGSEGV), a guest_memfd page where it is private or past the end of the file
 * (a real access would SIGBUS).
 *
 * Bulk paths (fill, verify, and reads/writes of {@link BULK_MIN} bytes or more) first prove the
 * whole range accessible with madvise(MADV_POPULATE_READ/WRITE), which faults every page in and
 * answers EFAULT — never SIGBUS — where a page cannot be accessed; only then do they touch it
 * directly (memset, memcmp, memcpy at C speed). Where the proof fails they fall back to the
 * syscall path, which reports the first faulting offset. Proofs are remembered per 2 MiB granule
 * until the mapping's access epoch changes (for a guest_memfd mapping: any memory-attribute call
 * on its VM), because that is what can make a proven page inaccessible again; punching a hole
 * does not (an INIT_SHARED page faults back in as zeroes). A page that turns inaccessible between
 * the proof and the access (another thread or process converting it to private at that instant)
 * is outside this guarantee; kvmsh itself runs vCPUs and host accesses on one thread.
 * @module
 */

import { IOVEC } from "../ffi/structs.ts";
import { encode } from "../ffi/struct_codec.ts";
import { errno, libc, MADV, MAP, MAP_FAILED, pageSize, PROT } from "../ffi/libc.ts";
import { ClosedError, InterruptedError, InUseError, KvmError } from "./errors.ts";
import { sigintCount } from "./sigint_count.ts";
import { hex } from "./units.ts";
import { ERRNO } from "../ffi/errno.ts";
import { faultHint } from "./hints.ts";

/** How a mapping was made (shown by `list`/`stat`). */
export interface MappingInfo {
  /** What is mapped: `anon`, `gmem0`, … */
  source: string;
  /** The mapping's own name (`map2`) where it has one: a guest_memfd's mmap, named by its Kvm. */
  name?: string;
  /** File offset of the mapping's first byte (0 for anonymous memory). */
  offset: bigint;
  /** MAP_SHARED (true) or MAP_PRIVATE. */
  shared: boolean;
  /** Protection, as `rw`, `r`, … */
  prot: string;
}

/** A fault on the fault-safe path: where it happened and how much was done before. */
export class MemoryFaultError extends KvmError {
  /** Offset (in the mapping) of the first byte that faulted. */
  readonly faultOffset: bigint;
  /**
   * @param hint why, when the caller knows better than the table (the mapping's source and
   *   protection: anonymous memory and guest_memfd fault for different reasons).
   */
  constructor(syscall: string, e: number, args: Record<string, unknown>, faultOffset: bigint, hint?: string) {
    super({ syscall, errno: e, args: { ...args, fault_at: faultOffset }, hint });
    this.name = "MemoryFaultError";
    this.faultOffset = faultOffset;
  }
}

const CHUNK = 1 << 20;

/** Accesses of at least this many bytes take the proven direct path (below it, one syscall is cheaper). */
export const BULK_MIN = 64 * 1024;

/** Bulk work (populate, fill, verify) goes in slices of this size, looking for a Ctrl-C between them. */
const SLICE = 64n << 20n;

/** Throws InterruptedError when a SIGINT was counted since `sigints` (the kick's handler held it). */
function stopOnSigint(sigints: number, what: string, done: bigint, total: bigint): void {
  if (sigintCount() !== sigints) throw new InterruptedError(`${what}: after ${hex(done)} of ${hex(total)} bytes`);
}

/** Proofs of accessibility are kept per granule of this size. */
const GRANULE = 2n << 20n;
const PROVEN_READ = 1;
const PROVEN_WRITE = 2;

let pageBig: bigint | undefined;
let pattern: Uint8Array<ArrayBuffer> | undefined;

/** A CHUNK-sized buffer of `value` bytes, reused while the value stays the same. */
function patternOf(value: number): Uint8Array<ArrayBuffer> {
  if (!pattern || pattern[0] !== value) pattern = new Uint8Array(CHUNK).fill(value);
  return pattern;
}

/** Parses `rw`/`r`/`rwx`/`none` into PROT bits. */
export function parseProt(text: string): number {
  if (text === "none" || text === "") return PROT.NONE;
  let p = 0;
  for (const c of text) {
    if (c === "r") p |= PROT.READ;
    else if (c === "w") p |= PROT.WRITE;
    else if (c === "x") p |= PROT.EXEC;
    else throw new RangeError(`bad protection '${text}' (use r, rw, rwx, none)`);
  }
  return p;
}

/** mmap(2), throwing a KvmError with the arguments on failure. */
export function mmapRaw(
  length: bigint,
  prot: number,
  flags: number,
  fd: number,
  offset: bigint,
): Deno.PointerObject {
  const p = libc().mmap(null, length, prot, flags, fd, offset);
  if (p === null || Deno.UnsafePointer.value(p) === MAP_FAILED) {
    throw new KvmError({
      syscall: "mmap",
      errno: errno(),
      args: { length, prot, shared: (flags & MAP.SHARED) !== 0, fd, offset },
    });
  }
  return p;
}

/** A live mmap region. Unmapped exactly once, by its owner or by {@link Mapping.unmap}. */
export class Mapping {
  #ptr: Deno.PointerObject | null;
  #onUnmap?: (m: Mapping) => void;
  #accessEpoch?: () => number;
  #proofs?: Uint8Array;
  #proofEpoch = 0;
  /** Live memslots whose userspace_addr points into this mapping: key → [vm name, slot id]. */
  readonly #pins = new Map<object, [string, number]>();
  readonly iovLocal = new Uint8Array(IOVEC.size);
  readonly iovRemote = new Uint8Array(IOVEC.size);
  readonly #iovLocalPtr = Deno.UnsafePointer.of(this.iovLocal);
  readonly #iovRemotePtr = Deno.UnsafePointer.of(this.iovRemote);

  /**
   * @param ptr the mapped address.
   * @param size length in bytes.
   * @param info how it was made.
   * @param onUnmap called once after munmap (owners drop it from their lists).
   * @param accessEpoch a counter that changes whenever pages of this mapping may have become
   *   inaccessible (bulk paths re-prove after a change); absent: accessibility never changes
   *   after a successful proof (anonymous memory).
   */
  constructor(
    ptr: Deno.PointerObject,
    readonly size: bigint,
    readonly info: MappingInfo,
    onUnmap?: (m: Mapping) => void,
    accessEpoch?: () => number,
  ) {
    this.#ptr = ptr;
    this.#onUnmap = onUnmap;
    this.#accessEpoch = accessEpoch;
  }

  /** Maps anonymous private memory (what a plain memslot uses). */
  static anonymous(size: bigint, prot = PROT.READ | PROT.WRITE): Mapping {
    const p = mmapRaw(size, prot, MAP.PRIVATE | MAP.ANONYMOUS | MAP.NORESERVE, -1, 0n);
    return new Mapping(p, size, { source: "anon", offset: 0n, shared: false, prot: protText(prot) });
  }

  /** Its name (`map2`) when it has one (a guest_memfd's mmap), else undefined (anonymous memory). */
  get name(): string | undefined {
    return this.info.name;
  }

  /** True until unmapped. */
  get mapped(): boolean {
    return this.#ptr !== null;
  }

  /** The mapping's pointer. */
  get pointer(): Deno.PointerObject {
    if (!this.#ptr) throw new ClosedError(`mapping of ${this.info.source}`);
    return this.#ptr;
  }

  /** The host virtual address (what a memslot's userspace_addr takes). */
  get address(): bigint {
    return BigInt(Deno.UnsafePointer.value(this.pointer));
  }

  /** What a fault names as the source: a mapping that starts inside its file says where (`gmem0+0x2000`). */
  #sourceText(): string {
    return this.info.offset ? `${this.info.source}+${hex(this.info.offset)}` : this.info.source;
  }

  #range(offset: bigint, length: bigint, what: string): void {
    if (offset < 0n || length < 0n || offset + length > this.size) {
      throw new RangeError(`${what} ${hex(offset)}+${hex(length)} is outside the mapping (size ${hex(this.size)})`);
    }
  }

  #vm(op: "process_vm_readv" | "process_vm_writev", offset: bigint, buf: Uint8Array<ArrayBuffer>, len: number): void {
    const l = libc();
    let done = 0;
    while (done < len) {
      const n = Math.min(len - done, CHUNK);
      encode(IOVEC, {
        iov_base: BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf))) + BigInt(done),
        iov_len: n,
      }, this.iovLocal);
      encode(IOVEC, { iov_base: this.address + offset + BigInt(done), iov_len: n }, this.iovRemote);
      const r = op === "process_vm_readv"
        ? l.process_vm_readv(Deno.pid, this.#iovLocalPtr, 1n, this.#iovRemotePtr, 1n, 0n)
        : l.process_vm_writev(Deno.pid, this.#iovLocalPtr, 1n, this.#iovRemotePtr, 1n, 0n);
      const got = Number(r);
      if (got <= 0) {
        const e = got < 0 ? errno() : ERRNO.EFAULT;
        throw new MemoryFaultError(
          op,
          e,
          { source: this.#sourceText(), offset, length: BigInt(len) },
          offset + BigInt(done),
          e === ERRNO.EFAULT
            ? faultHint(op === "process_vm_readv" ? "read" : "write", {
              source: this.info.source,
              prot: this.info.prot,
            })
            : undefined,
        );
      }
      done += got;
    }
  }

  /**
   * Proves `[offset, offset+length)` accessible (for writing when `write`) with
   * madvise(MADV_POPULATE_*), which faults the pages in and answers EFAULT where an access would
   * raise SIGBUS. Returns the direct pointer to `offset`, or null when the proof failed (the
   * caller then takes the syscall path, which reports where the fault is).
   */
  #proven(offset: bigint, length: bigint, write: boolean): Deno.PointerObject | null {
    const base = this.pointer;
    const need = write ? PROVEN_WRITE : PROVEN_READ;
    const epoch = this.#accessEpoch?.() ?? 0;
    if (!this.#proofs || epoch !== this.#proofEpoch) {
      this.#proofs = new Uint8Array(Number((this.size + GRANULE - 1n) / GRANULE));
      this.#proofEpoch = epoch;
    }
    const proofs = this.#proofs;
    const g0 = Number(offset / GRANULE);
    const g1 = Number((offset + length - 1n) / GRANULE);
    let known = true;
    for (let g = g0; g <= g1; g++) {
      if ((proofs[g] & need) === 0) {
        known = false;
        break;
      }
    }
    if (!known) {
      // Fault in exactly the range asked for (never pages around it the user did not touch), and
      // remember only the granules it covers whole.
      if (!this.#populate(offset, offset + length, write)) return null;
      const mark = write ? PROVEN_READ | PROVEN_WRITE : PROVEN_READ;
      const end = offset + length;
      for (let g = g0; g <= g1; g++) {
        const from = BigInt(g) * GRANULE;
        const to = from + GRANULE < this.size ? from + GRANULE : this.size;
        if (from >= offset && to <= end) proofs[g] |= mark;
      }
    }
    return Deno.UnsafePointer.offset(base, Number(offset));
  }

  /** madvise(MADV_POPULATE_READ/WRITE) over [start, end) rounded out to pages; false on any error. */
  #populate(start: bigint, end: bigint, write: boolean): boolean {
    pageBig ??= BigInt(pageSize());
    const s = start - start % pageBig;
    const e = (end + pageBig - 1n) / pageBig * pageBig;
    // In slices: faulting in gigabytes takes seconds here, and a Ctrl-C should not wait for it.
    const sigints = sigintCount();
    for (let at = s; at < e; at += SLICE) {
      if (at > s) stopOnSigint(sigints, write ? "populate for writing" : "populate", at - s, e - s);
      const r = libc().madvise(
        Deno.UnsafePointer.offset(this.pointer, Number(at)),
        e - at < SLICE ? e - at : SLICE,
        write ? MADV.POPULATE_WRITE : MADV.POPULATE_READ,
      );
      if (r < 0) return false;
    }
    return true;
  }

  /** Reads `length` bytes at `offset`, fault-safe: a fault throws {@link MemoryFaultError} (EFAULT). */
  read(offset: bigint, length: number): Uint8Array<ArrayBuffer> {
    this.#range(offset, BigInt(length), "read");
    const buf = new Uint8Array(length);
    if (length >= BULK_MIN) {
      const p = this.#proven(offset, BigInt(length), false);
      if (p) {
        libc().memcpy_to_buf(buf, p, BigInt(length));
        return buf;
      }
    }
    if (length) this.#vm("process_vm_readv", offset, buf, length);
    return buf;
  }

  /** Writes `bytes` at `offset`, fault-safe. */
  write(offset: bigint, bytes: Uint8Array): void {
    this.#range(offset, BigInt(bytes.length), "write");
    if (bytes.length >= BULK_MIN) {
      const p = this.#proven(offset, BigInt(bytes.length), true);
      if (p) {
        libc().memcpy_from_buf(p, bytes, BigInt(bytes.length));
        return;
      }
    }
    const copy = new Uint8Array(bytes);
    if (copy.length) this.#vm("process_vm_writev", offset, copy, copy.length);
  }

  /** Fills `length` bytes at `offset` with `value` (its low byte), fault-safe. */
  fill(offset: bigint, length: bigint, value: number): void {
    this.#range(offset, length, "fill");
    value &= 0xff;
    if (length >= BULK_MIN) {
      const p = this.#proven(offset, length, true);
      if (p) {
        const sigints = sigintCount();
        for (let done = 0n; done < length; done += SLICE) {
          if (done) stopOnSigint(sigints, "fill", done, length);
          libc().memset(
            Deno.UnsafePointer.offset(p, Number(done)),
            value,
            length - done < SLICE ? length - done : SLICE,
          );
        }
        return;
      }
    }
    const chunk = new Uint8Array(Number(length < BigInt(CHUNK) ? length : BigInt(CHUNK))).fill(value);
    for (let done = 0n; done < length;) {
      const n = length - done < BigInt(chunk.length) ? Number(length - done) : chunk.length;
      this.#vm("process_vm_writev", offset + done, chunk, n);
      done += BigInt(n);
    }
  }

  /**
   * Checks that `length` bytes at `offset` all equal `value`, fault-safe. Returns the offset of
   * the first byte that differs (and its value), or undefined when all match.
   */
  verify(offset: bigint, length: bigint, value: number): { offset: bigint; found: number } | undefined {
    this.#range(offset, length, "verify");
    value &= 0xff;
    if (length >= BULK_MIN) {
      const p = this.#proven(offset, length, false);
      if (p) return this.#verifyDirect(p, offset, length, value);
    }
    const buf = new Uint8Array(Number(length < BigInt(CHUNK) ? length : BigInt(CHUNK)));
    for (let done = 0n; done < length;) {
      const n = length - done < BigInt(buf.length) ? Number(length - done) : buf.length;
      this.#vm("process_vm_readv", offset + done, buf, n);
      for (let i = 0; i < n; i++) {
        if (buf[i] !== value) return { offset: offset + done + BigInt(i), found: buf[i] };
      }
      done += BigInt(n);
    }
    return undefined;
  }

  /** verify over a proven range: memcmp against a pattern chunk, scanning only a chunk that differs. */
  #verifyDirect(
    p: Deno.PointerObject,
    offset: bigint,
    length: bigint,
    value: number,
  ): { offset: bigint; found: number } | undefined {
    const ref = patternOf(value);
    const l = libc();
    const total = Number(length);
    const sigints = sigintCount();
    for (let done = 0; done < total; done += CHUNK) {
      if (done % Number(SLICE) === 0 && done) stopOnSigint(sigints, "verify", BigInt(done), length);
      const n = Math.min(CHUNK, total - done);
      const q = Deno.UnsafePointer.offset(p, done)!;
      if (l.memcmp(q, ref, BigInt(n)) === 0) continue;
      const bytes = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(q, n));
      for (let i = 0; i < n; i++) {
        if (bytes[i] !== value) return { offset: offset + BigInt(done + i), found: bytes[i] };
      }
    }
    return undefined;
  }

  /** True when the byte at `offset` can be read without a fault. */
  readable(offset: bigint): boolean {
    try {
      this.read(offset, 1);
      return true;
    } catch (e) {
      if (e instanceof MemoryFaultError) return false;
      throw e;
    }
  }

  /**
   * Marks this mapping as the host memory of live slot `slot` of `vm` (until {@link unpin} with
   * the same key): {@link unmap} refuses meanwhile, since the slot would go on pointing at
   * memory a later mmap may reuse.
   */
  pin(key: object, vm: string, slot: number): void {
    this.#pins.set(key, [vm, slot]);
  }

  /** Ends a {@link pin}. */
  unpin(key: object): void {
    this.#pins.delete(key);
  }

  /** The live slots this mapping backs, as `[vm name, slot id]`. */
  get pins(): [string, number][] {
    return [...this.#pins.values()].map(([v, s]) => [v, s]);
  }

  /**
   * The pins other than those of `keys` (a VM's own slots), as `[vm name, slot id]`: by the pin's
   * key, not the VM's name, which two Kvm instances both count from vm0.
   */
  pinsExcept(keys: ReadonlySet<object>): [string, number][] {
    return [...this.#pins].filter(([k]) => !keys.has(k)).map(([, [v, s]]) => [v, s]);
  }

  /** Throws {@link InUseError} when a live memslot uses this mapping; `what` names it in the message. */
  assertUnpinned(what = `${this.info.source} mapping at ${this.mapped ? hex(this.address) : "(unmapped)"}`): void {
    const [first] = this.#pins.values();
    if (!first) return;
    const slots = [...this.#pins.values()].filter(([v]) => v === first[0]).map(([, s]) => s).sort((a, b) => a - b);
    throw new InUseError(what, first[0], slots);
  }

  /** munmap; later calls do nothing. Refused ({@link InUseError}) while a live memslot uses the mapping. */
  unmap(): void {
    if (!this.#ptr) return;
    this.assertUnpinned();
    const r = libc().munmap(this.#ptr, this.size);
    if (r < 0) throw new KvmError({ syscall: "munmap", errno: errno(), args: { source: this.info.source } });
    this.#ptr = null;
    this.#onUnmap?.(this);
  }

  /** A plain description for listings. */
  describe(): Record<string, unknown> {
    return {
      ...(this.info.name ? { name: this.info.name } : {}),
      source: this.info.source,
      address: this.mapped ? hex(this.address) : null,
      size: this.size,
      offset: this.info.offset,
      shared: this.info.shared,
      prot: this.info.prot,
    };
  }
}

/** PROT bits as `rwx` text. */
export function protText(p: number): string {
  return `${p & PROT.READ ? "r" : ""}${p & PROT.WRITE ? "w" : ""}${p & PROT.EXEC ? "x" : ""}` || "none";
}
