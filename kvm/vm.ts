/**
 * A VM fd: capabilities, guest_memfd, memslots, memory attributes, vCPUs, and guest memory
 * access by guest physical address.
 * @module
 */

import { CAP, capName } from "../ffi/caps.ts";
import { GUEST_MEMFD_FLAGS, IOCTL, MEMORY_ATTRIBUTES, MEMSLOT_FLAGS, vmTypeName } from "../ffi/uapi.ts";
import {
  KVM_CREATE_GUEST_MEMFD_ARGS,
  KVM_ENABLE_CAP_ARGS,
  KVM_MEMORY_ATTRIBUTES_ARGS,
  KVM_USERSPACE_MEMORY_REGION,
  KVM_USERSPACE_MEMORY_REGION2,
} from "../ffi/structs.ts";
import { encode } from "../ffi/struct_codec.ts";
import { libc } from "../ffi/libc.ts";
import { ioctlBuf, ioctlInt, OwnedFd, setCloexec } from "./fd.ts";
import { GuestMemfd } from "./guest_memfd.ts";
import { Mapping } from "./mapping.ts";
import { MemoryRegion2, Memslot, MemslotSpec } from "./memslot.ts";
import { hex } from "./units.ts";
import { InUseError, KvmError } from "./errors.ts";
import { memslotHint, type MemslotHintContext } from "./hints.ts";
import type { Kvm } from "./kvm.ts";
import { createVcpu, Vcpu } from "./vcpu.ts";

/** Something a VM owns and closes when it closes (vCPUs, for instance). */
export interface VmChild {
  close(): void;
}

/** One KVM_SET_MEMORY_ATTRIBUTES call and the kernel's answer. */
export interface AttributeRecord {
  gpa: bigint;
  size: bigint;
  attributes: bigint;
  /** `ok` or the errno name. */
  result: string;
}

/** Where a guest physical range lives on the host. */
export interface GpaTarget {
  slot: Memslot;
  mapping: Mapping;
  offset: bigint;
}

/** A VM. Closing it closes its vCPUs, guest_memfds, memslot backings and the fd. */
export class Vm {
  readonly #fd: OwnedFd;
  readonly #gmems = new Set<GuestMemfd>();
  readonly #slots = new Map<number, Memslot>();
  /** The mappings each live slot's userspace_addr points into (pinned: they refuse to unmap). */
  readonly #slotPins = new Map<Memslot, Mapping[]>();
  readonly #children = new Set<VmChild>();
  readonly #attributes: AttributeRecord[] = [];
  readonly #vcpus = new Map<number, Vcpu>();
  #nextVcpu = 0;

  /** Made by {@link Kvm.createVm}. */
  constructor(
    readonly kvm: Kvm,
    fd: number,
    readonly type: number,
    readonly name: string,
    private readonly onClose: (vm: Vm) => void,
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

  /** The VM type's name. */
  get typeName(): string {
    return vmTypeName(this.type);
  }

  /** KVM_CHECK_EXTENSION on the VM fd: the answer for this VM's type. */
  checkExtension(cap: number): number {
    return ioctlInt(this.fd, IOCTL.KVM_CHECK_EXTENSION, cap, { cap: capName(cap) });
  }

  /** KVM_ENABLE_CAP on the VM fd. */
  enableCap(cap: number, args: readonly bigint[] = [], flags = 0): void {
    const buf = encode(KVM_ENABLE_CAP_ARGS, { cap, flags, args });
    ioctlBuf(this.fd, IOCTL.KVM_ENABLE_CAP, buf, { cap: capName(cap), flags, args: args.map((a) => hex(a)).join(",") });
  }

  /** The guest_memfd flags KVM_CAP_GUEST_MEMFD_FLAGS reports for this VM. */
  supportedGmemFlags(): bigint {
    return BigInt(this.checkExtension(CAP.GUEST_MEMFD_FLAGS) >>> 0);
  }

  /**
   * KVM_CREATE_GUEST_MEMFD. `flags` are names (`mmap,init-shared`) or bits; whatever is given
   * is sent, so the kernel's answer to odd input can be seen.
   */
  createGuestMemfd(size: bigint, flags: bigint | string = 0n): GuestMemfd {
    const f = typeof flags === "string" ? GUEST_MEMFD_FLAGS.parse(flags) : flags;
    const buf = encode(KVM_CREATE_GUEST_MEMFD_ARGS, { size, flags: f });
    const fd = ioctlBuf(this.fd, IOCTL.KVM_CREATE_GUEST_MEMFD, buf, {
      size,
      flags: GUEST_MEMFD_FLAGS.format(f) || "0",
    });
    // The kernel makes the fd without close-on-exec: set it, so `as`, `ld` and every other child
    // does not inherit the guest_memfd (a touch child gets it on purpose, see touchInChild).
    try {
      setCloexec(fd, true);
    } catch (e) {
      libc().close(fd);
      throw e;
    }
    const g = new GuestMemfd(this, fd, size, f, this.kvm.nextName("gmem"), (x) => this.#gmems.delete(x));
    this.#gmems.add(g);
    return g;
  }

  /** The open guest_memfds of this VM. */
  get gmems(): GuestMemfd[] {
    return [...this.#gmems];
  }

  /** KVM_SET_USER_MEMORY_REGION2 exactly as given (no tracking): for probing the kernel's rules. */
  setUserMemoryRegion2(r: MemoryRegion2): void {
    const buf = encode(KVM_USERSPACE_MEMORY_REGION2, {
      slot: r.slot,
      flags: r.flags,
      guest_phys_addr: r.guestPhysAddr,
      memory_size: r.memorySize,
      userspace_addr: r.userspaceAddr,
      guest_memfd_offset: r.guestMemfdOffset,
      guest_memfd: r.guestMemfd,
    });
    try {
      ioctlBuf(this.fd, IOCTL.KVM_SET_USER_MEMORY_REGION2, buf, {
        slot: r.slot,
        flags: MEMSLOT_FLAGS.format(r.flags) || "0",
        gpa: r.guestPhysAddr,
        size: r.memorySize,
        userspace_addr: r.userspaceAddr,
        gmem_fd: r.guestMemfd,
        gmem_offset: r.guestMemfdOffset,
      });
    } catch (e) {
      throw this.#memslotError(e, r, false);
    }
  }

  /** The legacy KVM_SET_USER_MEMORY_REGION exactly as given. */
  setUserMemoryRegion(r: Omit<MemoryRegion2, "guestMemfd" | "guestMemfdOffset">): void {
    const buf = encode(KVM_USERSPACE_MEMORY_REGION, {
      slot: r.slot,
      flags: r.flags,
      guest_phys_addr: r.guestPhysAddr,
      memory_size: r.memorySize,
      userspace_addr: r.userspaceAddr,
    });
    try {
      ioctlBuf(this.fd, IOCTL.KVM_SET_USER_MEMORY_REGION, buf, {
        slot: r.slot,
        flags: MEMSLOT_FLAGS.format(r.flags) || "0",
        gpa: r.guestPhysAddr,
        size: r.memorySize,
        userspace_addr: r.userspaceAddr,
      });
    } catch (e) {
      throw this.#memslotError(e, r, true);
    }
  }

  /**
   * A refused memslot call's error with the hint fitted to this VM: the live slot of that id in
   * kvmsh's books (a change KVM does not make to a live slot), the slots it overlaps (EEXIST),
   * and, where the guest-memfd flag was sent, whether this kernel has guest_memfd at all.
   */
  #memslotError(e: unknown, r: Omit<MemoryRegion2, "guestMemfd" | "guestMemfdOffset">, legacy: boolean): unknown {
    if (!(e instanceof KvmError) || (e.errnoName !== "EINVAL" && e.errnoName !== "EEXIST")) return e;
    const ctx: MemslotHintContext = { legacy };
    const live = this.#slots.get(r.slot);
    if (live) {
      const { guestPhysAddr: gpa, memorySize: size, userspaceAddr, flags } = live.region;
      ctx.live = { gpa, size, userspaceAddr, flags };
    }
    const end = r.guestPhysAddr + r.memorySize;
    ctx.overlaps = this.memslots.filter((s) => s.id !== r.slot && s.gpa < end && r.guestPhysAddr < s.gpa + s.size)
      .map((s) => ({ slot: s.id, gpa: s.gpa, size: s.size }));
    if ((r.flags & MEMSLOT_FLAGS.bits["guest-memfd"]) !== 0n && e.errnoName === "EINVAL") {
      try {
        ctx.gmemCap = this.checkExtension(CAP.GUEST_MEMFD);
      } catch {
        // Unknown: the hint then says both.
      }
    }
    const hint = memslotHint(e.errnoName, e.args, ctx);
    if (hint === e.hint) return e;
    return new KvmError({ syscall: e.syscall, op: e.op, errno: e.errno, args: e.args, hint });
  }

  /**
   * Creates or changes memslot `spec.slot` through KVM_SET_USER_MEMORY_REGION2 and tracks it.
   * Memory it allocates (userspace `anon`) is released when the slot is deleted or the VM closes.
   * While the slot lives, the guest_memfd it binds refuses to close and the mapping its
   * userspace_addr points into refuses to unmap ({@link InUseError}). When the kernel refuses the
   * slot, memory this call mapped for it (anonymous memory, the gmem's mapping) is unmapped again.
   */
  addMemslot(spec: MemslotSpec): Memslot {
    let flags = typeof spec.flags === "string" ? MEMSLOT_FLAGS.parse(spec.flags) : spec.flags ?? 0n;
    if (spec.gmem) flags |= MEMSLOT_FLAGS.bits["guest-memfd"];
    const gmemOffset = spec.gmemOffset ?? 0n;
    const old = this.#slots.get(spec.slot);
    // Moving a live slot or changing its flags keeps its memory: KVM refuses another
    // userspace_addr for it (EINVAL), and a fresh anonymous mapping would be just that.
    const keep = spec.userspace === undefined && old !== undefined && old.size === spec.size &&
      old.gmem === spec.gmem && (old.backing !== undefined || old.region.userspaceAddr === 0n);
    const choice = keep
      ? (old.backing ?? "none")
      : spec.userspace ?? (spec.gmem ? (spec.gmem.mmapable ? "gmem" : "none") : "anon");
    // The old slot's own memory is released when the call succeeds (a delete, or other memory):
    // refuse first, nothing sent, while another slot still points into it.
    if (old && choice !== old.backing) this.#assertReleasable(old);
    let backing: Mapping | undefined;
    let backingOffset = 0n;
    let owns = false;
    let mappedHere = false;
    let uaddr = 0n;
    if (choice === "anon" && spec.size > 0n) {
      // (size 0 deletes the slot: nothing to back)
      backing = Mapping.anonymous(spec.size);
      owns = true;
    } else if (choice === "gmem") {
      if (!spec.gmem) throw new RangeError("userspace 'gmem' needs a guest_memfd");
      const had = new Set(spec.gmem.mappings);
      backing = spec.gmem.mapping();
      mappedHere = !had.has(backing);
      backingOffset = gmemOffset;
    } else if (choice instanceof Mapping) {
      backing = choice;
    } else if (typeof choice === "bigint") {
      uaddr = choice;
    }
    if (keep && old.backing) backingOffset = old.backingOffset;
    if (backing) uaddr = backing.address + backingOffset;
    const region: MemoryRegion2 = {
      slot: spec.slot,
      flags,
      guestPhysAddr: spec.gpa,
      memorySize: spec.size,
      userspaceAddr: uaddr,
      guestMemfdOffset: spec.gmem ? gmemOffset : 0n,
      guestMemfd: spec.gmem?.fd ?? 0,
    };
    try {
      this.setUserMemoryRegion2(region);
    } catch (e) {
      if (owns || mappedHere) backing?.unmap();
      throw e;
    }
    if (old) this.#forget(old);
    if (old?.ownsBacking && old.backing !== backing) old.backing?.unmap();
    // The same memory under the new slot: who allocated it still frees it.
    if (old?.ownsBacking && backing !== undefined && old.backing === backing) owns = true;
    const slot = new Memslot(region, spec.gmem, backing, backingOffset, owns);
    if (spec.size === 0n) return slot;
    this.#slots.set(spec.slot, slot);
    const pins = backing ? [backing] : this.#mappingsAt(uaddr, spec.size);
    for (const m of pins) m.pin(slot, this.name, slot.id);
    this.#slotPins.set(slot, pins);
    return slot;
  }

  /** The known mappings (gmem mappings, other slots' memory) that hold `[addr, addr+size)` entirely. */
  #mappingsAt(addr: bigint, size: bigint): Mapping[] {
    if (addr === 0n || size <= 0n) return [];
    const known = new Set<Mapping>();
    for (const g of this.#gmems) for (const m of g.mappings) known.add(m);
    for (const s of this.#slots.values()) if (s.backing) known.add(s.backing);
    return [...known].filter((m) => m.mapped && addr >= m.address && addr + size <= m.address + m.size);
  }

  /** Drops a slot from the books: its pins end. */
  #forget(s: Memslot): void {
    for (const m of this.#slotPins.get(s) ?? []) m.unpin(s);
    this.#slotPins.delete(s);
    this.#slots.delete(s.id);
  }

  /**
   * Throws {@link InUseError} when memory `s` allocated (and frees with it) is the memory of
   * another live slot: a raw userspace_addr inside it, or another VM given the mapping.
   */
  #assertReleasable(s: Memslot): void {
    if (!s.ownsBacking || !s.backing?.mapped) return;
    const other = s.backing.pinsExcept(new Set([s]));
    if (!other.length) return;
    const vm = other[0][0];
    throw new InUseError(
      `slot ${s.id} memory`,
      vm,
      other.filter(([v]) => v === vm).map(([, id]) => id).sort((a, b) => a - b),
    );
  }

  /** KVM_SET_USER_MEMORY_REGION2 with memory_size 0 for slot `id` (as it was made, when kvmsh made it). */
  #sendDelete(id: number, s: Memslot | undefined): void {
    this.setUserMemoryRegion2({
      slot: id,
      flags: s?.region.flags ?? 0n,
      guestPhysAddr: s?.gpa ?? 0n,
      memorySize: 0n,
      userspaceAddr: s?.region.userspaceAddr ?? 0n,
      guestMemfdOffset: s?.region.guestMemfdOffset ?? 0n,
      guestMemfd: s?.region.guestMemfd ?? 0,
    });
  }

  /**
   * Deletes memslot `id` (memory_size 0) and releases memory the slot allocated. Refused before
   * anything is sent ({@link InUseError} naming the VM and slots, the slot and its memory as they
   * were) while that memory is also another live slot's: KVM would drop the slot, but the memory
   * could not be freed and would stay mapped with no owner. Delete the other slots first (or close
   * the VMs). Memory the slot was given ({@link MemslotSpec.userspace} a Mapping) is never freed
   * here, so sharing it never blocks a delete.
   */
  deleteMemslot(id: number): void {
    const s = this.#slots.get(id);
    if (s) this.#assertReleasable(s);
    this.#sendDelete(id, s);
    if (s) this.#forget(s);
    if (s?.ownsBacking) s.backing?.unmap();
  }

  /**
   * Replaces live memslot `id` with `spec` (the same id, or a free one): deletes the old slot,
   * adds the new one, and only then releases the memory the old slot allocated. When the new slot
   * cannot be made (its memory, or the kernel refuses it), the old slot is put back as it was —
   * same region, same memory and contents — and the error is thrown: the VM is left as it was. An
   * overlapping replacement (the same GPA) cannot be added before the old slot goes, hence the
   * order. Refused up front ({@link InUseError}, nothing changed) where {@link deleteMemslot}
   * would be. Without a live slot `id` this is {@link addMemslot}.
   */
  replaceMemslot(id: number, spec: MemslotSpec): Memslot {
    const old = this.#slots.get(id);
    if (!old) return this.addMemslot(spec);
    if (spec.slot !== id && this.#slots.has(spec.slot)) {
      throw new RangeError(`replaceMemslot(${id}): slot ${spec.slot} is live; the new slot takes ${id} or a free id`);
    }
    this.#assertReleasable(old);
    const pins = this.#slotPins.get(old) ?? [];
    this.#sendDelete(id, old);
    this.#forget(old);
    let slot: Memslot;
    try {
      slot = this.addMemslot(spec);
    } catch (e) {
      try {
        this.setUserMemoryRegion2(old.region);
      } catch (again) {
        // Not put back (nothing else ran in between, so the kernel should not refuse what it had):
        // the slot is gone; release the memory it owned rather than leave it with no owner.
        if (old.ownsBacking) old.backing?.unmap();
        throw new AggregateError(
          [e, again],
          `${(e as Error).message}; and slot ${id} could not be put back, so it is gone: ${(again as Error).message}`,
        );
      }
      this.#slots.set(old.id, old);
      const live = pins.filter((m) => m.mapped);
      for (const m of live) m.pin(old, this.name, old.id);
      this.#slotPins.set(old, live);
      throw e;
    }
    if (old.ownsBacking && old.backing !== slot.backing) old.backing?.unmap();
    return slot;
  }

  /** The memslots kvmsh created, by slot id. */
  get memslots(): Memslot[] {
    return [...this.#slots.values()].sort((a, b) => a.id - b.id);
  }

  /** The memslot with id `id`, if kvmsh created it. */
  memslot(id: number): Memslot | undefined {
    return this.#slots.get(id);
  }

  /**
   * KVM_SET_MEMORY_ATTRIBUTES: always sent, so the kernel's answer shows (ENOTTY on a VM type
   * without private memory). Every call and its answer is kept for {@link attributeLog}. Numbers
   * are taken as well as bigints.
   */
  setMemoryAttributes(
    gpaIn: bigint | number,
    sizeIn: bigint | number,
    attributesIn: bigint | number,
    flagsIn: bigint | number = 0n,
  ): void {
    const [gpa, size, attributes, flags] = [gpaIn, sizeIn, attributesIn, flagsIn].map((v) => BigInt(v));
    const buf = encode(KVM_MEMORY_ATTRIBUTES_ARGS, { address: gpa, size, attributes, flags });
    const rec: AttributeRecord = { gpa, size, attributes, result: "ok" };
    try {
      ioctlBuf(this.fd, IOCTL.KVM_SET_MEMORY_ATTRIBUTES, buf, {
        gpa,
        size,
        attributes: MEMORY_ATTRIBUTES.format(attributes) || "shared",
        flags,
      });
    } catch (e) {
      rec.result = (e as { errnoName?: string }).errnoName ?? "error";
      throw e;
    } finally {
      this.#attributes.push(rec);
    }
  }

  /** Marks a range private (KVM_MEMORY_ATTRIBUTE_PRIVATE). */
  setPrivate(gpa: bigint | number, size: bigint | number): void {
    this.setMemoryAttributes(gpa, size, MEMORY_ATTRIBUTES.bits.private);
  }

  /** Marks a range shared (attributes 0). */
  setShared(gpa: bigint | number, size: bigint | number): void {
    this.setMemoryAttributes(gpa, size, 0n);
  }

  /** Every KVM_SET_MEMORY_ATTRIBUTES sent to this VM and the kernel's answer. */
  get attributeLog(): readonly AttributeRecord[] {
    return this.#attributes;
  }

  /**
   * The host mapping behind `[gpa, gpa+length)`: the slot's userspace memory, or for a gmem
   * slot without it, the gmem's own mapping. Throws RangeError where no slot covers the range.
   */
  resolveGpa(gpa: bigint, length: bigint): GpaTarget {
    const slot = this.memslots.find((s) => s.contains(gpa));
    if (!slot) throw new RangeError(`no memslot covers GPA ${hex(gpa)}`);
    if (gpa + length > slot.gpa + slot.size) {
      throw new RangeError(
        `GPA ${hex(gpa)}+${hex(length)} runs past slot ${slot.id} (ends at ${hex(slot.gpa + slot.size)})`,
      );
    }
    const within = gpa - slot.gpa;
    if (slot.backing) return { slot, mapping: slot.backing, offset: slot.backingOffset + within };
    if (slot.gmem?.mmapable) {
      return { slot, mapping: slot.gmem.mapping(), offset: slot.region.guestMemfdOffset + within };
    }
    throw new RangeError(`slot ${slot.id} has no host mapping (userspace_addr none, gmem without mmap)`);
  }

  /** Fault-safe read of guest memory by GPA. */
  readGuest(gpa: bigint, length: number): Uint8Array {
    const t = this.resolveGpa(gpa, BigInt(length));
    return t.mapping.read(t.offset, length);
  }

  /** Fault-safe write of guest memory by GPA. */
  writeGuest(gpa: bigint, bytes: Uint8Array): void {
    const t = this.resolveGpa(gpa, BigInt(bytes.length));
    t.mapping.write(t.offset, bytes);
  }

  /**
   * KVM_CREATE_VCPU with `id` (default: one more than the highest id created so far; KVM keeps a
   * closed vCPU's id taken until the VM closes) and its kvm_run mapping. The vCPU runs on the
   * calling thread; the VM closes it when it closes.
   */
  createVcpu(id?: number): Vcpu {
    const n = id ?? this.#nextVcpu;
    const v = createVcpu(this, n, (x) => {
      this.#vcpus.delete(x.id);
      this.release(x);
    });
    this.#vcpus.set(n, v);
    this.#nextVcpu = Math.max(this.#nextVcpu, n + 1);
    return this.adopt(v);
  }

  /** The open vCPUs, by id. */
  get vcpus(): Vcpu[] {
    return [...this.#vcpus.values()].sort((a, b) => a.id - b.id);
  }

  /** Registers something the VM closes when it closes (vCPUs). */
  adopt<T extends VmChild>(child: T): T {
    this.#children.add(child);
    return child;
  }

  /** Forgets a child that closed itself. */
  release(child: VmChild): void {
    this.#children.delete(child);
  }

  /** Closes vCPUs, guest_memfds, memslot backings, then the VM fd. Safe to call twice. */
  close(): void {
    if (!this.#fd.open) return;
    // Refuse before anything is closed when memory this VM frees backs another VM's slot (a
    // guest_memfd's mapping, or an anonymous slot backing): closing half-way would leave the VM
    // closed but its guest_memfds open, with nothing left to close them.
    const freed = [...this.#gmems].flatMap((g) => g.mappings.map((m) => [g.name, m] as const));
    for (const s of this.#slots.values()) {
      if (s.ownsBacking && s.backing) freed.push([`slot ${s.id} memory`, s.backing]);
    }
    const mine = new Set<object>(this.#slots.values());
    for (const [what, m] of freed) {
      const other = m.pinsExcept(mine);
      if (other.length) {
        throw new InUseError(
          what,
          other[0][0],
          other.filter(([v]) => v === other[0][0]).map(([, id]) => id),
        );
      }
    }
    for (const c of [...this.#children]) c.close();
    this.#children.clear();
    this.#fd.close();
    // The slots died with the VM fd: their memory and guest_memfds may go now.
    for (const s of [...this.#slots.values()]) {
      this.#forget(s);
      if (s.ownsBacking) s.backing?.unmap();
    }
    for (const g of [...this.#gmems]) g.close();
    this.onClose(this);
  }

  /** `using vm = kvm.createVm()` */
  [Symbol.dispose](): void {
    this.close();
  }

  /** A plain description for listings. */
  describe(): Record<string, unknown> {
    return {
      name: this.name,
      fd: this.open ? this.fd : -1,
      type: this.typeName,
      gmems: this.gmems.map((g) => g.name),
      memslots: this.memslots.map((s) => s.id),
      vcpus: this.vcpus.map((v) => v.id),
    };
  }
}
