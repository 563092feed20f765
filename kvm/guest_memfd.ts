/**
 * guest_memfd: a file of guest memory created by KVM_CREATE_GUEST_MEMFD. Every syscall the
 * kernel's guest_memfd_test.c makes on it is a method here, so each can be seen to work or fail.
 * @module
 */

import { errno, libc, MAP, pageSize, PROT } from "../ffi/libc.ts";
import { FALLOC, GUEST_MEMFD_FLAGS } from "../ffi/uapi.ts";
import { STAT } from "../ffi/structs.ts";
import { decode } from "../ffi/struct_codec.ts";
import { InUseError, KvmError } from "./errors.ts";
import { OwnedFd } from "./fd.ts";
import { Mapping, mmapRaw, protText } from "./mapping.ts";
import { hex } from "./units.ts";
import { touchInChild, type TouchMode, type TouchResult } from "./child_touch.ts";
import type { Vm } from "./vm.ts";

/** What fstat says of a guest_memfd. */
export interface GmemStat {
  size: bigint;
  blksize: bigint;
  blocks: bigint;
  ino: bigint;
  mode: number;
}

/** Options of {@link GuestMemfd.mmap}. */
export interface GmemMmapOptions {
  /** File offset (default 0). */
  offset?: bigint;
  /** Length (default: the file size minus offset). */
  length?: bigint;
  /** MAP_SHARED (default) or MAP_PRIVATE (which guest_memfd refuses). */
  shared?: boolean;
  /** PROT bits (default read|write). */
  prot?: number;
}

/** A guest_memfd file. Closing it unmaps its mappings and closes the fd. */
export class GuestMemfd {
  readonly #fd: OwnedFd;
  readonly #mappings = new Set<Mapping>();

  /**
   * Made by {@link Vm.createGuestMemfd}.
   * @param vm the VM it belongs to.
   * @param fd the fd KVM returned.
   * @param size the size it was created with.
   * @param flags the flags it was created with.
   * @param name short name (`gmem0`).
   */
  constructor(
    readonly vm: Vm,
    fd: number,
    readonly size: bigint,
    readonly flags: bigint,
    readonly name: string,
    private readonly onClose: (g: GuestMemfd) => void,
  ) {
    this.#fd = new OwnedFd(fd, name);
  }

  /** The fd number. */
  get fd(): number {
    return this.#fd.fd;
  }

  /** True until closed. */
  get open(): boolean {
    return this.#fd.open;
  }

  /** Flags as names (`mmap|init-shared`). */
  get flagNames(): string {
    return GUEST_MEMFD_FLAGS.format(this.flags) || "none";
  }

  /** True when created with GUEST_MEMFD_FLAG_MMAP. */
  get mmapable(): boolean {
    return (this.flags & GUEST_MEMFD_FLAGS.bits.mmap) !== 0n;
  }

  /** The live mappings of this file. */
  get mappings(): Mapping[] {
    return [...this.#mappings];
  }

  /** fstat(2). */
  stat(): GmemStat {
    const buf = new Uint8Array(STAT.size);
    if (libc().fstat(this.fd, buf) < 0) {
      throw new KvmError({ syscall: "fstat", errno: errno(), args: { gmem: this.name } });
    }
    const s = decode(STAT, buf);
    return {
      size: BigInt(s.st_size),
      blksize: BigInt(s.st_blksize),
      blocks: BigInt(s.st_blocks),
      ino: s.st_ino,
      mode: s.st_mode,
    };
  }

  /**
   * mmap(2) of the file. guest_memfd answers ENODEV without the mmap flag, EINVAL for MAP_PRIVATE.
   * The mapping is named by the Kvm (`map2`).
   */
  mmap(opts: GmemMmapOptions = {}): Mapping {
    return this.#mmap(opts, true);
  }

  #mmap(opts: GmemMmapOptions, named: boolean): Mapping {
    const offset = opts.offset ?? 0n;
    const length = opts.length ?? this.size - offset;
    const shared = opts.shared ?? true;
    const prot = opts.prot ?? (PROT.READ | PROT.WRITE);
    const p = mmapRaw(length, prot, shared ? MAP.SHARED : MAP.PRIVATE, this.fd, offset);
    const m = new Mapping(
      p,
      length,
      {
        source: this.name,
        ...(named ? { name: this.vm.kvm.nextName("map") } : {}),
        offset,
        shared,
        prot: protText(prot),
      },
      (x) => this.#mappings.delete(x),
      () => this.vm.attributeLog.length,
    );
    this.#mappings.add(m);
    return m;
  }

  /**
   * The first live shared mapping that covers the whole file, mapping the file on first use.
   * Fault-safe reads and writes by file offset go through it. A mapping made here has no name
   * (nobody asked for it: it is implicit), so names count the mappings users made.
   */
  mapping(): Mapping {
    for (const m of this.#mappings) {
      if (m.info.shared && m.info.offset === 0n && m.size === this.size) return m;
    }
    return this.#mmap({}, false);
  }

  /** fallocate(2) with a raw mode. */
  fallocate(mode: number, offset: bigint, length: bigint): void {
    if (libc().fallocate(this.fd, mode, offset, length) < 0) {
      throw new KvmError({
        syscall: "fallocate",
        errno: errno(),
        args: { gmem: this.name, mode: hex(mode), offset, length },
      });
    }
  }

  /**
   * Allocates backing memory: fallocate KEEP_SIZE (what guest_memfd accepts), or mode 0 with
   * `keepSize` false, which is sent as asked (guest_memfd answers EOPNOTSUPP).
   */
  allocate(offset: bigint, length: bigint, keepSize = true): void {
    this.fallocate(keepSize ? FALLOC.KEEP_SIZE : 0, offset, length);
  }

  /** Frees backing memory (fallocate PUNCH_HOLE|KEEP_SIZE): the range reads as zeroes after. */
  punchHole(offset: bigint, length: bigint): void {
    this.fallocate(FALLOC.PUNCH_HOLE | FALLOC.KEEP_SIZE, offset, length);
  }

  #io(syscall: string, r: number | bigint, args: Record<string, unknown>): number {
    if (r < 0) throw new KvmError({ syscall, errno: errno(), args: { gmem: this.name, ...args } });
    return Number(r);
  }

  /** read(2) from the fd (guest_memfd refuses it). Returns the bytes read. */
  read(length: number): Uint8Array {
    const buf = new Uint8Array(length);
    const n = this.#io("read", libc().read(this.fd, buf, BigInt(length)), { length });
    return buf.subarray(0, n);
  }

  /** write(2) to the fd (guest_memfd refuses it). Returns the count written. */
  write(bytes: Uint8Array): number {
    return this.#io("write", libc().write(this.fd, new Uint8Array(bytes), BigInt(bytes.length)), {
      length: bytes.length,
    });
  }

  /** pread(2) (guest_memfd refuses it). */
  pread(length: number, offset: bigint): Uint8Array {
    const buf = new Uint8Array(length);
    const n = this.#io("pread", libc().pread(this.fd, buf, BigInt(length), offset), { length, offset });
    return buf.subarray(0, n);
  }

  /** pwrite(2) (guest_memfd refuses it). */
  pwrite(bytes: Uint8Array, offset: bigint): number {
    return this.#io("pwrite", libc().pwrite(this.fd, new Uint8Array(bytes), BigInt(bytes.length), offset), {
      length: bytes.length,
      offset,
    });
  }

  /** ftruncate(2) (guest_memfd refuses size changes). */
  truncate(length: bigint): void {
    this.#io("ftruncate", libc().ftruncate(this.fd, length), { length });
  }

  /** Fault-safe read of file bytes through the shared mapping (EFAULT where a load would SIGBUS). */
  readMem(offset: bigint, length: number): Uint8Array {
    return this.mapping().read(offset, length);
  }

  /** Fault-safe write of file bytes through the shared mapping. */
  writeMem(offset: bigint, bytes: Uint8Array): void {
    this.mapping().write(offset, bytes);
  }

  /** Fault-safe fill through the shared mapping. */
  fillMem(offset: bigint, length: bigint, value: number): void {
    this.mapping().fill(offset, length, value);
  }

  /**
   * A real access at file offset `offset` in a child process: where the fault-safe path reports
   * EFAULT, this shows whether a user access gets SIGBUS. By default the child maps the page
   * around `offset`; `opts.mapOffset`/`opts.mapLength` choose the mapped file range (it may run
   * past the end of the file, as upstream's 4x-size overflow mapping). Mode `fill` memsets
   * `opts.length` bytes from `offset` (a partial fill before a SIGBUS stays in the shared memory).
   */
  touchInChild(
    offset: bigint,
    mode: TouchMode = "read",
    value = 0,
    opts: { mapOffset?: bigint; mapLength?: bigint; length?: bigint } = {},
  ): Promise<TouchResult> {
    const page = BigInt(pageSize());
    const mapOffset = opts.mapOffset ?? (opts.mapLength === undefined ? offset - (offset % page) : 0n);
    const mapLength = opts.mapLength ?? page;
    if (offset < mapOffset || offset + (opts.length ?? 1n) > mapOffset + mapLength) {
      throw new RangeError(
        `access ${hex(offset)}+${hex(opts.length ?? 1n)} is outside the child's mapping ${hex(mapOffset)}+${
          hex(mapLength)
        }`,
      );
    }
    return touchInChild(this.fd, mapOffset, mapLength, offset - mapOffset, mode, value, opts.length ?? 1n);
  }

  /**
   * Unmaps every mapping and closes the fd; safe to call twice. Refused ({@link InUseError})
   * while a live memslot binds this file or points its userspace_addr into one of its mappings:
   * delete the slot first (closing the VM ends its slots, then closes its guest_memfds).
   */
  close(): void {
    if (!this.#fd.open) return;
    if (this.vm.open) {
      const bound = this.vm.memslots.filter((s) => s.gmem === this).map((s) => s.id);
      if (bound.length) throw new InUseError(this.name, this.vm.name, bound);
    }
    for (const m of this.#mappings) m.assertUnpinned(this.name);
    for (const m of [...this.#mappings]) m.unmap();
    this.#fd.close();
    this.onClose(this);
  }

  /** `using g = vm.createGuestMemfd(…)` */
  [Symbol.dispose](): void {
    this.close();
  }

  /** A plain description for listings. */
  describe(): Record<string, unknown> {
    return {
      name: this.name,
      fd: this.#fd.raw,
      vm: this.vm.name,
      size: this.size,
      flags: this.flagNames,
      mappings: this.mappings.map((m) => m.describe()),
    };
  }
}
