/**
 * `runGuest(vm, spec)`: one call from "a guest file / inline asm" to "what happened": memory,
 * image, registers, the exit loop, and the result. The REPL's `run guest.bin` and a scenario's
 * guest are this call. See run_loop.ts for the result's fields.
 * @module
 */

import { CAP, KVM_HC_MAP_GPA_RANGE } from "../ffi/caps.ts";
import { GUEST_MEMFD_FLAGS } from "../ffi/uapi.ts";
import { assemble } from "./asm.ts";
import { GuestAbi } from "./guest_abi.ts";
import { isElf, loadElf } from "./loaders/elf.ts";
import {
  argRegs,
  type GpaRange,
  loadLongModeFlat,
  LONG_MODE_LAYOUT,
  type PageTableInfo,
  PD_AREA_SIZE,
  vcpuHas1g,
} from "./loaders/long_mode.ts";
import { type LoadInfo, loadRealMode } from "./loaders/real_mode.ts";
import type { Memslot } from "./memslot.ts";
import type { GuestMemfd } from "./guest_memfd.ts";
import { InUseError, MainMemoryError } from "./errors.ts";
import { readHostFile } from "./host_file.ts";
import { formatSize, hex } from "./units.ts";
import { type ExitHandlers, type RunResult, runVcpu } from "./run_loop.ts";
import type { Vcpu } from "./vcpu.ts";
import type { Vm } from "./vm.ts";

/** Where the guest's main memory comes from: `anon`, or `gmem:<flags>` (e.g. `gmem:mmap,init-shared`). */
export type GuestMemory = "anon" | `gmem:${string}` | "gmem";

/** What {@link runGuest} takes. Exactly one of image, elf, asm. */
export interface GuestSpec {
  /** A flat binary (bytes or a file path); an ELF file given here is loaded as ELF. */
  image?: Uint8Array | string;
  /** An ELF64 file (bytes or path). */
  elf?: Uint8Array | string;
  /** Inline assembly (AT&T), assembled on demand and cached. */
  asm?: string;
  /** `real` (default for flat images) or `long` (ELF and asm default to long). */
  mode?: "real" | "long";
  /**
   * Main memory: `anon` (also when unset: no `memory` means anonymous memory, whatever an earlier
   * run on the VM used) or a guest_memfd with these flags.
   */
  memory?: GuestMemory;
  /** For gmem memory: userspace_addr none, the gmem's own mapping (default), or separate anonymous memory. */
  userspace?: "none" | "gmem" | "anon";
  /** Size of the main memslot (default 1 MiB real mode, 4 MiB long mode). */
  memorySize?: bigint;
  /**
   * Slot id of the main memslot at GPA 0 (default: the one runGuest made before on this VM, else 0,
   * else the lowest free id). See {@link mainMemory} for when memory is reused or replaced.
   */
  slot?: number;
  /** Real mode: segment (default 0x1000) and offset (default 0) of the image; `sp` default 0x8000. */
  segment?: number;
  offset?: number;
  sp?: number;
  /** Long mode flat image load address (default 0x100000) and stack (default: top of main memory). */
  loadAddress?: bigint;
  stack?: bigint;
  /** rdi, rsi, rdx, rcx, r8, r9. */
  args?: readonly (bigint | number)[];
  /**
   * Extra identity-mapped ranges (long mode). The low 512 GiB is mapped whole already (1 GiB
   * pages, or 2 MiB pages through runGuest's page-directory slot at {@link PD_SLOT_GPA}); these
   * matter above 512 GiB, or where that slot cannot be placed.
   */
  extraMaps?: readonly GpaRange[];
  /** Enable KVM_CAP_EXIT_HYPERCALL for KVM_HC_MAP_GPA_RANGE before running (default false). */
  hypercallExit?: boolean;
  /** The vCPU to use (default: the VM's first vCPU, created if none); one of another VM's is a RangeError. */
  vcpu?: Vcpu;
  timeoutMs?: number;
  deadline?: number;
  interruptible?: boolean;
  maxExits?: number;
  handlers?: ExitHandlers;
  abi?: GuestAbi;
  onConsole?: (byte: number) => void;
  onUcall?: GuestAbi["onUcall"];
}

/** A run's result plus what was loaded where. */
export interface GuestResult extends RunResult {
  vcpu: Vcpu;
  load: LoadInfo & { pageTables?: PageTableInfo };
  memslot: Memslot;
  /** KVM_ENABLE_CAP(EXIT_HYPERCALL) answer when asked: `ok` or the error message. */
  hypercallExit?: string;
}

const KIB = 1n << 10n;
const MIB = 1n << 20n;
const cpuidSet = new WeakSet<Vcpu>();

function bytesOf(x: Uint8Array | string): Uint8Array {
  return typeof x === "string" ? readHostFile(x) : x;
}

/** The main memory runGuest made on a VM, and what it was made as. */
interface OwnMain {
  slot: Memslot;
  /** `anon` or `gmem:<flag bits>:<userspace>`. */
  kind: string;
  /** The guest_memfd runGuest made for it, closed when the slot is replaced. */
  gmem?: GuestMemfd;
  /** Where its size came from, for a later run's advice: `the default for a real-mode guest`, … */
  sized: string;
}

const ownMain = new WeakMap<Vm, OwnMain>();

/** The main memory runGuest makes when the spec gives no `memorySize`. */
export const DEFAULT_MAIN_MEMORY = Object.freeze({ real: MIB, long: 4n * MIB });

/** Smallest main memory a mode runs in (a layout squeezed below a user's slot may not go lower). */
const MIN_SIZE = { real: 256n * KIB, long: 2n * MIB } as const;

/**
 * The guest_memfd flags `memory` asks for (`gmem` alone: mmap,init-shared), or undefined for
 * anonymous memory. Throws RangeError for anything else, or flags GUEST_MEMFD_FLAGS cannot name.
 */
export function guestMemoryFlags(memory: GuestMemory | string = "anon"): bigint | undefined {
  if (memory === "anon") return undefined;
  if (!memory.startsWith("gmem")) {
    throw new RangeError(`memory '${memory}': use anon or gmem:<flags> (gmem:mmap,init-shared)`);
  }
  return GUEST_MEMFD_FLAGS.parse(memory.includes(":") ? memory.slice(memory.indexOf(":") + 1) : "mmap,init-shared");
}

/** What `spec.memory`/`spec.userspace` ask for, normalised (`anon`, `gmem:<bits>:<userspace>`). */
function memoryKind(
  spec: Pick<GuestSpec, "memory" | "userspace">,
): { kind: string; flags?: bigint; userspace?: string } {
  const flags = guestMemoryFlags(spec.memory);
  if (flags === undefined) return { kind: "anon" };
  const userspace = spec.userspace ?? ((flags & GUEST_MEMFD_FLAGS.bits.mmap) !== 0n ? "gmem" : "none");
  return { kind: `gmem:${flags}:${userspace}`, flags, userspace };
}

function inTheWay(vm: Vm, s: Memslot, what: string, why: string): MainMemoryError {
  return new MainMemoryError(
    `runGuest's main memory (${what}) ${why} slot ${s.id} of ${vm.name} (GPA ${hex(s.gpa)}+${hex(s.size)}), which ` +
      `runGuest did not make: delete it (\`slot del ${s.id}\`, vm.deleteMemslot(${s.id})) or run in a new VM`,
    vm.name,
    s.id,
  );
}

/**
 * The main memslot at GPA 0, as `spec.memory` says (unset: anonymous). runGuest keeps track of the
 * slot it made on each VM: a later run reuses it when it fits (the same kind of memory,
 * `memorySize` unset and it is big enough for the mode, or the same), else replaces it with the
 * new one (and closes the guest_memfd it made for it). The new memory is made before the old slot
 * goes, and a new slot the kernel refuses puts the old one back: a run whose memory cannot be made
 * leaves the VM as it was. So does an {@link InUseError} up front when the guest_memfd runGuest made
 * for the slot it replaces is still held by another slot ({@link gmemInUse}). A slot the user made is used as it is when it holds GPA 0 and no
 * particular memory is asked for; otherwise it is never reused or touched: runGuest picks a free
 * slot id and, without an explicit `memorySize`, a size that ends below the user's slots — or
 * throws {@link MainMemoryError} naming the slot in the way.
 */
export function mainMemory(
  vm: Vm,
  spec: Pick<GuestSpec, "memory" | "userspace" | "memorySize" | "slot" | "mode">,
): Memslot {
  const mode = spec.mode === "real" ? "real" : "long";
  const want = memoryKind(spec);
  let mine = ownMain.get(vm);
  if (mine && vm.memslot(mine.slot.id) !== mine.slot) {
    // The user deleted or replaced it: it is theirs to manage now.
    ownMain.delete(vm);
    mine = undefined;
  }
  const minSize = MIN_SIZE[mode];
  if (mine) {
    const s = mine.slot;
    const kindOk = mine.kind === want.kind; // unset memory is anon: a gmem slot from before is replaced
    const sizeOk = spec.memorySize === undefined ? s.size >= minSize : s.size === spec.memorySize;
    if (kindOk && sizeOk && (spec.slot === undefined || spec.slot === s.id)) return s;
  }
  const others = vm.memslots.filter((s) => !isOwn(vm, s));
  const atZero = others.find((s) => s.contains(0n));
  if (atZero && spec.memory === undefined && spec.memorySize === undefined && (spec.slot ?? atZero.id) === atZero.id) {
    return atZero; // the user's own memory at GPA 0
  }
  const what = `${spec.memory ?? "anon"} at GPA 0`;
  // Slot id: the one asked for, else runGuest's previous one, else 0, else the lowest free id.
  // Every live slot's id but the main slot about to be replaced: runGuest's page-directory slot
  // stays, and its id is taken too (the main slot got it and the kernel refused the re-size).
  const taken = new Set(vm.memslots.filter((s) => s !== mine?.slot).map((s) => s.id));
  let id = spec.slot ?? mine?.slot.id ?? 0;
  if (spec.slot !== undefined && taken.has(id)) throw inTheWay(vm, vm.memslot(id)!, what, "needs the id of");
  while (taken.has(id)) id++;
  // Size: as asked, else the mode's default, shrunk to end below a user's slot where that leaves enough.
  let size = spec.memorySize ?? DEFAULT_MAIN_MEMORY[mode];
  let sized = spec.memorySize !== undefined ? `memorySize ${formatSize(size)}` : `the default for a ${mode}-mode guest`;
  if (atZero) throw inTheWay(vm, atZero, `${what}, ${formatSize(size)}`, "overlaps");
  const below = others.filter((s) => s.gpa < size).sort((a, b) => (a.gpa < b.gpa ? -1 : 1))[0];
  if (below) {
    const gap = below.gpa & ~(KIB * 4n - 1n);
    if (spec.memorySize !== undefined || gap < minSize) {
      throw inTheWay(vm, below, `${what}, ${formatSize(size)}`, "overlaps");
    }
    size = gap;
    sized = `as much as fits below slot ${below.id} (GPA ${hex(below.gpa)}), which runGuest did not make`;
  }
  // The old guest_memfd is closed after the swap: refuse now, before anything is made, if a slot
  // other than the main slot still holds it (the close would throw with the VM already changed).
  if (mine?.gmem) {
    const held = gmemInUse(vm, mine.gmem, mine.slot);
    if (held) throw held;
  }
  // The new memory first: where it cannot be made (KVM_CREATE_GUEST_MEMFD refused: no guest_memfd
  // on this kernel) the old slot and its memory are untouched. Then the swap, which puts the old
  // slot back if the kernel refuses the new one: a failed run leaves the VM as it was.
  const gmem = want.flags === undefined ? undefined : vm.createGuestMemfd(size, want.flags);
  let slot: Memslot;
  try {
    const slotSpec = gmem
      ? { slot: id, gpa: 0n, size, gmem, userspace: want.userspace as "none" | "gmem" | "anon" }
      : { slot: id, gpa: 0n, size };
    slot = mine ? vm.replaceMemslot(mine.slot.id, slotSpec) : vm.addMemslot(slotSpec);
  } catch (e) {
    gmem?.close();
    throw e;
  }
  ownMain.set(vm, { slot, kind: want.kind, sized, ...(gmem ? { gmem } : {}) });
  mine?.gmem?.close();
  return slot;
}

/**
 * Why `gmem`, the guest_memfd behind runGuest's main slot `own`, cannot be closed once `own` is
 * replaced: another live slot binds it, or has its userspace_addr in one of its mappings (a pin by a
 * slot other than `own`, of any VM). Returns the {@link InUseError} naming those slots (of one VM),
 * or undefined when closing it will work. Only the file's `name` and `mappings` are looked at.
 */
export function gmemInUse(
  vm: Vm,
  gmem: Pick<GuestMemfd, "name" | "mappings">,
  own: Memslot,
): InUseError | undefined {
  const what = `${gmem.name}, the guest_memfd runGuest made for its main slot ${own.id} of ${vm.name} (this run ` +
    `replaces that slot and closes it),`;
  const bound = vm.memslots.filter((s) => s !== own && s.gmem === gmem).map((s) => s.id);
  if (bound.length) return new InUseError(what, vm.name, bound);
  const pins = gmem.mappings.flatMap((m) => m.pinsExcept(new Set([own])));
  if (!pins.length) return undefined;
  const other = pins[0][0];
  const ids = [...new Set(pins.filter(([v]) => v === other).map(([, id]) => id))].sort((a, b) => a - b);
  return new InUseError(what, other, ids);
}

/** runGuest's page-directory slot on a VM (long mode without 1 GiB pages), and whether it holds the tables yet. */
interface OwnPd {
  slot: Memslot;
  written: boolean;
}

const ownPd = new WeakMap<Vm, OwnPd>();

/** Where the page-directory slot goes: just above the identity-mapped low 512 GiB. */
export const PD_SLOT_GPA = 512n << 30n;

/**
 * The slot holding the 512 page directories that map the low 512 GiB with 2 MiB pages when the
 * vCPU has no 1 GiB pages (made once per VM, at {@link PD_SLOT_GPA}, outside what it maps, with
 * the lowest free slot id). Undefined when a user's slot sits there (the tables then map only
 * memslots and extraMaps).
 */
function pdSlot(vm: Vm): OwnPd | undefined {
  const mine = ownPd.get(vm);
  if (mine && vm.memslot(mine.slot.id) === mine.slot) return mine;
  ownPd.delete(vm);
  const end = PD_SLOT_GPA + PD_AREA_SIZE;
  if (vm.memslots.some((s) => s.gpa < end && s.gpa + s.size > PD_SLOT_GPA)) return undefined;
  const taken = new Set(vm.memslots.map((s) => s.id));
  let id = 0;
  while (taken.has(id)) id++;
  const pd = { slot: vm.addMemslot({ slot: id, gpa: PD_SLOT_GPA, size: PD_AREA_SIZE }), written: false };
  ownPd.set(vm, pd);
  return pd;
}

/**
 * What runGuest made for itself on `vm` and still holds: its main memslot and page-directory slot,
 * and the guest_memfd behind a `memory: "gmem:…"` main slot. Listings mark them as made by a run.
 */
export function ownMemory(vm: Vm): { slots: Memslot[]; gmems: GuestMemfd[] } {
  const slots = [ownMain.get(vm)?.slot, ownPd.get(vm)?.slot].filter((s): s is Memslot =>
    s !== undefined && vm.memslot(s.id) === s
  );
  const g = ownMain.get(vm)?.gmem;
  return { slots: slots.sort((a, b) => a.id - b.id), gmems: g?.open ? [g] : [] };
}

/** True when `s` is a slot runGuest made for itself on `vm` (main memory or page directories). */
function isOwn(vm: Vm, s: Memslot): boolean {
  return ownMain.get(vm)?.slot === s || ownPd.get(vm)?.slot === s;
}

/** The range a loader's "no memslot covers GPA …" / "… runs past slot …" names, or undefined for other errors. */
function failedRange(e: unknown): { gpa: bigint; end: bigint; pastSlot?: number } | undefined {
  if (!(e instanceof RangeError)) return undefined;
  const none = /^no memslot covers GPA (0x[0-9a-f]+)/.exec(e.message);
  if (none) return { gpa: BigInt(none[1]), end: BigInt(none[1]) + 1n };
  const past = /^GPA (0x[0-9a-f]+)\+(0x[0-9a-f]+) runs past slot (\d+)/.exec(e.message);
  if (past) return { gpa: BigInt(past[1]), end: BigInt(past[1]) + BigInt(past[2]), pastSlot: Number(past[3]) };
  return undefined;
}

/**
 * A loader's "no memslot covers GPA …" / "… runs past slot …" with what the user needs to know,
 * when main memory at GPA 0 is what the guest did not fit: the range runs past main memory's end,
 * or starts above it with no other slot between. Says which slot that is (the user's, used as it
 * is, or runGuest's own, and where its size came from), and what to do: a slot above it in the
 * way is named (a larger memorySize would overlap it). Other errors are returned as they are.
 */
function doesNotFit(
  e: unknown,
  vm: Vm,
  main: Memslot,
  mode: "real" | "long",
  memorySize: bigint | undefined,
): unknown {
  const r = failedRange(e);
  if (!r) return e;
  const mainEnd = main.gpa + main.size;
  if (r.pastSlot !== undefined ? r.pastSlot !== main.id : r.gpa < mainEnd) return e;
  const where = `slot ${main.id} of ${vm.name} (GPA ${hex(main.gpa)}+${formatSize(main.size)})`;
  const own = isOwn(vm, main);
  // A slot between main memory's end and the (page-rounded) end of the range: main memory cannot
  // grow over it.
  const need = (r.end + 0xfffn) & ~0xfffn;
  const blocker = vm.memslots.filter((s) => s !== main && s.gpa >= mainEnd && s.gpa < need)
    .sort((a, b) => (a.gpa < b.gpa ? -1 : 1))[0];
  if (blocker && r.pastSlot === undefined && r.gpa >= blocker.gpa) return e; // the GPA is past that slot: not main's
  let advice: string;
  if (blocker) {
    const mainIs = own ? `runGuest's own ${where}` : `the user's ${where}, used as it is because it holds GPA 0`;
    const whose = isOwn(vm, blocker) ? "runGuest's own" : "the user's";
    advice =
      `main memory is ${mainIs}, and ${whose} slot ${blocker.id} (GPA ${hex(blocker.gpa)}+${
        formatSize(blocker.size)
      }) lies where the guest needs more: ` + (isOwn(vm, blocker)
        ? "run in a new VM"
        : `delete or move slot ${blocker.id} (\`slot del ${blocker.id}\`, vm.deleteMemslot(${blocker.id})), or run in a new VM`);
  } else if (own) {
    const sized = ownMain.get(vm)?.sized;
    const why = memorySize !== undefined
      ? `made as large as memorySize asked (${formatSize(memorySize)})`
      : `and this run gave no memorySize (its size is ${sized ?? "what it was made with"})`;
    advice = `main memory is runGuest's own ${where}, ${why}: give a ${
      memorySize !== undefined ? "larger memorySize" : "memorySize that holds the guest"
    }`;
  } else {
    const min = MIN_SIZE[mode];
    const needs = main.size < min ? `, and a ${mode}-mode guest needs at least ${formatSize(min)} there` : "";
    advice = `main memory is the user's ${where}, used as it is because it holds GPA 0${needs}: make the slot ` +
      `larger, add slots for the rest, or delete it (\`slot del ${main.id}\`, vm.deleteMemslot(${main.id})) so ` +
      `that runGuest makes its own`;
  }
  return new RangeError(`${(e as Error).message}: the guest does not fit its memory; ${advice}`, { cause: e });
}

/**
 * The vCPU for a run (given, the VM's first, or a new one) with KVM's CPUID once, the
 * page-directory slot where long mode needs it, and the guest loaded: image, page tables,
 * registers. Throws what the loaders throw (a guest that does not fit: "no memslot covers GPA …").
 */
function prepareVcpu(
  vm: Vm,
  spec: GuestSpec,
  bytes: Uint8Array,
  elf: boolean,
  mode: "real" | "long",
): { vcpu: Vcpu; load: GuestResult["load"]; pd?: OwnPd } {
  const vcpu = spec.vcpu ?? vm.vcpus[0] ?? vm.createVcpu();
  vcpu.completePending();
  if (!cpuidSet.has(vcpu)) {
    // KVM's supported CPUID, unless the vCPU was given one already (which the page tables honour).
    if (vcpu.getCpuid().length === 0) vcpu.setCpuid();
    cpuidSet.add(vcpu);
  }
  const args = (spec.args ?? []).map((a) => BigInt(a));
  const pd = mode === "long" && !vcpuHas1g(vcpu) ? pdSlot(vm) : undefined;
  const tables = { pdArea: pd?.slot.gpa, pdAreaWritten: pd?.written };
  let load: GuestResult["load"];
  if (elf) load = loadElf(vcpu, bytes, { stack: spec.stack, args, extraMaps: spec.extraMaps, ...tables });
  else if (mode === "long") {
    load = loadLongModeFlat(vcpu, bytes, {
      loadAddress: spec.loadAddress,
      stack: spec.stack,
      args,
      extraMaps: spec.extraMaps,
      ...tables,
    });
  } else {
    load = loadRealMode(vcpu, bytes, { segment: spec.segment, offset: spec.offset, sp: spec.sp });
    if (args.length) vcpu.setRegs(argRegs(args));
  }
  return { vcpu, load, ...(pd ? { pd } : {}) };
}

/**
 * After a run that failed before its guest ran (its vCPU could not be made or set up, or the guest
 * does not fit its memory): deletes the slots runGuest made for itself in this call under ids that
 * were free before it (a new main slot and its guest_memfd, the page-directory slot), so the VM has
 * the slots it had. A main slot that replaced runGuest's earlier one under the same id stays (the
 * old one's memory is gone; the next run reuses it when it fits), and so does a vCPU the run
 * created: KVM has no call that removes a vCPU.
 */
function dropNewOwnSlots(vm: Vm, idsBefore: ReadonlySet<number>): void {
  const main = ownMain.get(vm);
  if (main && vm.memslot(main.slot.id) === main.slot && !idsBefore.has(main.slot.id)) {
    vm.deleteMemslot(main.slot.id);
    ownMain.delete(vm);
    main.gmem?.close();
  }
  const pd = ownPd.get(vm);
  if (pd && vm.memslot(pd.slot.id) === pd.slot && !idsBefore.has(pd.slot.id)) {
    vm.deleteMemslot(pd.slot.id);
    ownPd.delete(vm);
  }
}

/**
 * Loads a guest and runs it; see {@link GuestSpec} and run_loop.ts. A guest that does not fit its
 * memory is a RangeError saying which memory and what to do; when the guest cannot be loaded (that,
 * or its vCPU cannot be made), the slots this call made for it are deleted again (see
 * {@link dropNewOwnSlots}).
 */
export function runGuest(vm: Vm, spec: GuestSpec): GuestResult {
  const given = [spec.image, spec.elf, spec.asm].filter((v) => v !== undefined).length;
  if (given !== 1) throw new RangeError("runGuest needs exactly one of image, elf, asm");
  let bytes: Uint8Array;
  let elf = false;
  if (spec.asm !== undefined) {
    const mode = spec.mode ?? "long";
    bytes = assemble(spec.asm, {
      mode,
      origin: mode === "real" ? BigInt(spec.offset ?? 0) : spec.loadAddress ?? LONG_MODE_LAYOUT.image,
    }).bytes;
  } else {
    bytes = bytesOf((spec.image ?? spec.elf)!);
    elf = spec.elf !== undefined || isElf(bytes);
  }
  const mode = spec.mode ?? (elf || spec.asm !== undefined ? "long" : "real");
  if (elf && mode === "real") throw new RangeError("an ELF64 image runs in long mode");
  if (spec.vcpu && spec.vcpu.vm !== vm) {
    const theirs = spec.vcpu.vm;
    const other = theirs.name === vm.name ? `another Kvm's ${theirs.name}` : theirs.name;
    throw new RangeError(
      `runGuest: vcpu ${spec.vcpu.name} belongs to ${other}, not to ${vm.name}, the VM this run loads and runs: ` +
        `give a vCPU of ${vm.name} (or none), or run on ${other}`,
    );
  }
  const idsBefore = new Set(vm.memslots.map((s) => s.id));
  const memslot = mainMemory(vm, { ...spec, mode });

  let hypercallExit: string | undefined;
  if (spec.hypercallExit) {
    try {
      vm.enableCap(CAP.EXIT_HYPERCALL, [1n << BigInt(KVM_HC_MAP_GPA_RANGE)]);
      hypercallExit = "ok";
    } catch (e) {
      hypercallExit = (e as Error).message;
    }
  }
  let prepared: ReturnType<typeof prepareVcpu>;
  try {
    prepared = prepareVcpu(vm, spec, bytes, elf, mode);
  } catch (e) {
    const err = doesNotFit(e, vm, memslot, mode, spec.memorySize);
    dropNewOwnSlots(vm, idsBefore);
    throw err;
  }
  const { vcpu, load, pd } = prepared;
  if (pd) pd.written = true;
  const r = runVcpu(vcpu, {
    handlers: spec.handlers,
    // Without one, the vCPU's own, which the loader above started from reset (a new image).
    abi: spec.abi,
    timeoutMs: spec.timeoutMs,
    deadline: spec.deadline,
    interruptible: spec.interruptible,
    maxExits: spec.maxExits,
    onConsole: spec.onConsole,
    onUcall: spec.onUcall,
  });
  return { ...r, vcpu, load, memslot, ...(hypercallExit ? { hypercallExit } : {}) };
}
