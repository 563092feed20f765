/**
 * Memslots: KVM_SET_USER_MEMORY_REGION2 bindings of guest physical ranges to host memory
 * and/or a guest_memfd range.
 * @module
 */

import { MEMSLOT_FLAGS } from "../ffi/uapi.ts";
import type { GuestMemfd } from "./guest_memfd.ts";
import type { Mapping } from "./mapping.ts";
import { hex } from "./units.ts";

/**
 * Where a memslot's `userspace_addr` points:
 * - `none`: 0, as upstream's gmem-only slots;
 * - `anon`: fresh anonymous memory of the slot's size (owned by the slot);
 * - `gmem`: the gmem's own shared mapping at the slot's gmem offset;
 * - a {@link Mapping} the caller owns, or a raw address (sent as is).
 */
export type UserspaceChoice = "none" | "anon" | "gmem" | Mapping | bigint;

/** The fields of KVM_SET_USER_MEMORY_REGION2, with kvmsh's names. */
export interface MemoryRegion2 {
  slot: number;
  flags: bigint;
  guestPhysAddr: bigint;
  memorySize: bigint;
  userspaceAddr: bigint;
  guestMemfdOffset: bigint;
  guestMemfd: number;
}

/** What {@link Vm.addMemslot} takes. */
export interface MemslotSpec {
  /** Slot id (bits 16..31 name the address space). */
  slot: number;
  /** Guest physical address. */
  gpa: bigint;
  /** Size in bytes. */
  size: bigint;
  /** Flags: names (`readonly,log-dirty`) or bits. `guest-memfd` is added when `gmem` is given. */
  flags?: bigint | string;
  /** guest_memfd to bind. */
  gmem?: GuestMemfd;
  /** Offset in the guest_memfd. */
  gmemOffset?: bigint;
  /**
   * Where userspace_addr points. Default: for an existing slot of the same size and guest_memfd
   * (a move or a flags change), the memory it has (the kernel refuses a new userspace_addr for a
   * live slot); else `gmem` for an mmap-able gmem, `none` for other gmem, `anon` without gmem.
   */
  userspace?: UserspaceChoice;
}

/** A memslot the kernel accepted. */
export class Memslot {
  /**
   * @param region what was sent.
   * @param gmem the bound guest_memfd, if any.
   * @param backing the host memory userspace_addr points at, if kvmsh knows it.
   * @param ownsBacking true when the slot allocated the backing (unmapped on delete).
   */
  constructor(
    readonly region: MemoryRegion2,
    readonly gmem: GuestMemfd | undefined,
    readonly backing: Mapping | undefined,
    readonly backingOffset: bigint,
    readonly ownsBacking: boolean,
  ) {}

  /** Slot id. */
  get id(): number {
    return this.region.slot;
  }

  /** Guest physical address. */
  get gpa(): bigint {
    return this.region.guestPhysAddr;
  }

  /** Size in bytes. */
  get size(): bigint {
    return this.region.memorySize;
  }

  /** True when `gpa` is inside the slot. */
  contains(gpa: bigint): boolean {
    return gpa >= this.gpa && gpa < this.gpa + this.size;
  }

  /** A plain description for listings. */
  describe(): Record<string, unknown> {
    return {
      slot: this.id,
      gpa: this.gpa,
      size: this.size,
      flags: MEMSLOT_FLAGS.format(this.region.flags) || "none",
      userspace_addr: hex(this.region.userspaceAddr),
      userspace: this.region.userspaceAddr === 0n ? "none" : this.backing ? this.backing.info.source : "raw",
      gmem: this.gmem?.name ?? null,
      gmem_offset: this.gmem ? this.region.guestMemfdOffset : null,
    };
  }
}
