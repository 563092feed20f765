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
import { MemoryRegion2, Memslot, MemslotSpec, type UserspaceChoice } from "./memslot.ts";
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

/** What a new slot's memory will be, decided before anything is sent. */
interface SlotPlan {
  /** Where userspace_addr points (a raw address inside the old slot's memory resolved to it). */
  choice: UserspaceChoice;
  /** The offset in the chosen mapping, where it is not the default. */
  offset?: bigint;
  /** True when the old slot's own memory goes on as the new slot's (not released, owner changes). */
  passes: boolean;
}

/** A slot the kernel accepted, not yet in the books. */
interface Made {
  region: MemoryRegion2;
  gmem: GuestMemfd | undefined;
  backing: Mapping | undefined;
  backingOffset: bigint;
  owns: boolean;
}

/**
 * {@link Vm.replaceMemslot} could not put the old slot back after the new one was refused: the
 * slot is gone, from the kernel and from kvmsh's books, and memory it owned was released (unless
 * another live slot still points into it, in which case it stays mapped). The call, errno and
 * arguments are the restore's; {@link replaceError} (also `cause`) is why the new slot was refused.
 */
export class MemslotRestoreError extends KvmError {
  /** The VM. */
  readonly vm: string;
  /** The id of the slot that is gone. */
  readonly slot: number;
  /** Why the replacement was refused. */
  readonly replaceError: unknown;

  constructor(vm: string, slot: number, again: KvmError, first: unknown) {
    super({ syscall: again.syscall, op: again.op, errno: again.errno, args: again.args, hint: again.hint });
    this.name = "MemslotRestoreError";
    this.vm = vm;
    this.slot = slot;
    this.replaceError = first;
    this.cause = first;
    const why = first instanceof Error ? first.message : String(first);
    this.message = `${why}; and slot ${slot} of ${vm} could not be put back, so it is gone: ${this.message}`;
  }

  /** KvmError's JSON (the restore's errno) with the slot that is gone and the replacement's error. */
  override toJSON(): Record<string, unknown> {
    const e = this.replaceError;
    return {
      ...super.toJSON(),
      kind: "MemslotRestoreError",
      vm: this.vm,
      slotGone: this.slot,
      replaceError: e instanceof KvmError
        ? e.toJSON()
        : { error: e instanceof Error ? e.name : "Error", message: e instanceof Error ? e.message : String(e) },
    };
  }
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
  /** Slot memory close() could not free yet (retried by the next close). */
  readonly #toUnmap = new Set<Mapping>();
  /** True once close() has done everything. */
  #closed = false;
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
        ctx.gmemSystemCap = this.kvm.checkExtension(CAP.GUEST_MEMFD);
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
   * While the slot lives, the guest_memfd it binds refuses to close and every known mapping its
   * userspace range reaches into (any overlap, this VM's or another VM's of the same Kvm) refuses
   * to unmap ({@link InUseError}). When the kernel refuses the slot, memory this call mapped for
   * it (anonymous memory, the gmem's mapping) is unmapped again.
   *
   * On a live slot the old slot's own memory is released when the call succeeds, unless the new
   * slot keeps it: the default for a move or flags change, `userspace` the old slot's Mapping, or a
   * raw address inside it (the new slot then owns it). A raw range that only partly overlaps it is
   * a RangeError, nothing sent. Refused first ({@link InUseError}, nothing sent) while another slot
   * still points into memory the call would release.
   */
  addMemslot(spec: MemslotSpec): Memslot {
    const old = this.#slots.get(spec.slot);
    const plan = this.#plan(spec, old, true);
    if (old && !plan.passes) this.#assertReleasable(old);
    const made = this.#send(spec, plan);
    if (old) this.#forget(old);
    const slot = this.#track(made, plan, old?.backing);
    if (old?.ownsBacking && !plan.passes) old.backing?.unmap();
    return slot;
  }

  /**
   * Where a new slot's userspace_addr will point, decided before anything is sent. `old` is the
   * slot whose memory the call releases (the live slot of that id, or the slot being replaced);
   * `live` when `old` is still live in the kernel (a move or flags change can keep its memory).
   * A raw address inside memory `old` owns resolves to that memory, which passes to the new slot.
   */
  #plan(spec: MemslotSpec, old: Memslot | undefined, live: boolean): SlotPlan {
    // Moving a live slot or changing its flags keeps its memory: KVM refuses another
    // userspace_addr for it (EINVAL), and a fresh anonymous mapping would be just that.
    const keep = live && spec.userspace === undefined && old !== undefined && old.size === spec.size &&
      old.gmem === spec.gmem && (old.backing !== undefined || old.region.userspaceAddr === 0n);
    let choice: UserspaceChoice = keep
      ? (old.backing ?? "none")
      : spec.userspace ?? (spec.gmem ? (spec.gmem.mmapable ? "gmem" : "none") : "anon");
    let offset = keep && old.backing ? old.backingOffset : undefined;
    const mem = old?.ownsBacking && old.backing?.mapped ? old.backing : undefined;
    if (mem && typeof choice === "bigint" && choice !== 0n && spec.size > 0n) {
      const [base, end] = [mem.address, mem.address + mem.size];
      if (choice < end && base < choice + spec.size) {
        if (choice < base || choice + spec.size > end) {
          throw new RangeError(
            `userspace_addr ${hex(choice)}+${hex(spec.size)} runs past slot ${old!.id}'s own memory ` +
              `(${hex(base)}+${hex(mem.size)}), which is freed when slot ${old!.id} goes: give a range ` +
              `inside it (the new slot then takes that memory over) or outside it`,
          );
        }
        offset = choice - base;
        choice = mem;
      }
    }
    // A delete (size 0) keeps nothing: the memory goes with the slot.
    return { choice, offset, passes: mem !== undefined && spec.size > 0n && choice === mem };
  }

  /**
   * Maps what `plan` asks for and sends the slot. When the kernel refuses it, memory mapped here
   * is unmapped again and the error is thrown; nothing else changed.
   */
  #send(spec: MemslotSpec, plan: SlotPlan): Made {
    let flags = typeof spec.flags === "string" ? MEMSLOT_FLAGS.parse(spec.flags) : spec.flags ?? 0n;
    if (spec.gmem) flags |= MEMSLOT_FLAGS.bits["guest-memfd"];
    const gmemOffset = spec.gmemOffset ?? 0n;
    const { choice } = plan;
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
    if (plan.offset !== undefined) backingOffset = plan.offset;
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
    return { region, gmem: spec.gmem, backing, backingOffset, owns };
  }

  /**
   * Books a slot the kernel accepted (a delete, size 0, is returned unbooked) and pins every known
   * mapping its userspace range reaches. `also` is a mapping to count as known (the replaced
   * slot's, no longer in the books). Memory the old slot owned and passed on is the new slot's.
   */
  #track(made: Made, plan: SlotPlan, also?: Mapping): Memslot {
    const { region, backing } = made;
    const slot = new Memslot(region, made.gmem, backing, made.backingOffset, made.owns || plan.passes);
    if (region.memorySize === 0n) return slot;
    this.#slots.set(slot.id, slot);
    const pins = new Set(this.#mappingsAt(region.userspaceAddr, region.memorySize, also));
    if (backing) pins.add(backing);
    for (const m of pins) m.pin(slot, this.name, slot.id);
    this.#slotPins.set(slot, [...pins]);
    return slot;
  }

  /**
   * The known mappings `[addr, addr+size)` reaches into (any overlap, not only one that holds it
   * whole): the gmem mappings and slot memory of every open VM of this Kvm, and `also`.
   */
  #mappingsAt(addr: bigint, size: bigint, also?: Mapping): Mapping[] {
    if (addr === 0n || size <= 0n) return [];
    const known = new Set<Mapping>();
    if (also) known.add(also);
    for (const vm of new Set([this, ...this.kvm.vms])) {
      for (const g of vm.gmems) for (const m of g.mappings) known.add(m);
      for (const s of vm.memslots) if (s.backing) known.add(s.backing);
    }
    return [...known].filter((m) => m.mapped && addr < m.address + m.size && m.address < addr + size);
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
   * order. Where the new slot keeps the old slot's own memory (`userspace` its Mapping, or a raw
   * address inside it) that memory is not released: it passes to the new slot, which frees it when
   * it goes (a raw range only partly inside it is a RangeError, nothing sent). Otherwise refused up
   * front ({@link InUseError}, nothing changed) where {@link deleteMemslot} would be. Should even
   * the restore be refused, the error is a {@link MemslotRestoreError}. Without a live slot `id`
   * this is {@link addMemslot}.
   */
  replaceMemslot(id: number, spec: MemslotSpec): Memslot {
    const old = this.#slots.get(id);
    if (!old) return this.addMemslot(spec);
    if (spec.slot !== id && this.#slots.has(spec.slot)) {
      throw new RangeError(`replaceMemslot(${id}): slot ${spec.slot} is live; the new slot takes ${id} or a free id`);
    }
    const plan = this.#plan(spec, old, false);
    if (!plan.passes) this.#assertReleasable(old);
    const pins = this.#slotPins.get(old) ?? [];
    this.#sendDelete(id, old);
    this.#forget(old);
    let slot: Memslot;
    try {
      slot = this.#track(this.#send(spec, plan), plan, old.backing);
    } catch (e) {
      try {
        this.setUserMemoryRegion2(old.region);
      } catch (again) {
        // Not put back (nothing else ran in between, so the kernel should not refuse what it had):
        // the slot is gone; release the memory it owned rather than leave it with no owner — unless
        // another live slot still points into it (possible where it was to pass on), which keeps it.
        if (old.ownsBacking && old.backing && !old.backing.pins.length) old.backing.unmap();
        if (again instanceof KvmError) throw new MemslotRestoreError(this.name, id, again, e);
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
    if (old.ownsBacking && !plan.passes) old.backing?.unmap();
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
    const uaddr = slot.region.userspaceAddr;
    throw new RangeError(
      uaddr === 0n
        ? `slot ${slot.id} has no host mapping (userspace_addr none, gmem without mmap)`
        : `slot ${slot.id} has no host mapping kvmsh knows (userspace_addr ${hex(uaddr)} was given as a raw address)`,
    );
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

  /**
   * Closes vCPUs and the VM fd, then frees the memory its slots own and closes its guest_memfds.
   * Refused up front ({@link InUseError}, nothing closed) while memory the VM frees backs a slot
   * of another VM. Past that point it goes to the end: every step runs even when one fails, the
   * books are emptied, and the first failure is thrown afterwards. Whatever could not be freed
   * then is retried by the next close(); once all is done, a later close() does nothing.
   */
  close(): void {
    if (this.#closed) return;
    if (this.#fd.open) this.#assertClosable();
    const errors: unknown[] = [];
    const attempt = (f: () => void): void => {
      try {
        f();
      } catch (e) {
        errors.push(e);
      }
    };
    for (const c of [...this.#children]) {
      this.#children.delete(c);
      attempt(() => c.close());
    }
    attempt(() => this.#fd.close());
    // The slots died with the VM fd: their memory and guest_memfds may go now. All pins first:
    // one slot of this VM may point into another's memory.
    const slots = [...this.#slots.values()];
    for (const s of slots) this.#forget(s);
    for (const s of slots) if (s.ownsBacking && s.backing) this.#toUnmap.add(s.backing);
    for (const m of [...this.#toUnmap]) {
      attempt(() => {
        m.unmap();
        this.#toUnmap.delete(m);
      });
    }
    for (const g of [...this.#gmems]) attempt(() => g.close());
    if (errors.length) {
      throw errors.length === 1
        ? errors[0]
        : new AggregateError(errors, `close ${this.name}: ${errors.map((e) => (e as Error).message).join("; ")}`);
    }
    this.#closed = true;
    this.onClose(this);
  }

  /**
   * Throws {@link InUseError} when memory this VM frees on close (a guest_memfd's mapping, or an
   * anonymous slot backing) is the memory of another VM's live slot: nothing is closed then.
   */
  #assertClosable(): void {
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
          other.filter(([v]) => v === other[0][0]).map(([, id]) => id).sort((a, b) => a - b),
        );
      }
    }
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
