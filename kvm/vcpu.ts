/**
 * A vCPU: KVM_CREATE_VCPU, the mmapped `kvm_run`, registers, CPUID, MP state, guest debug and
 * KVM_RUN. `run()` is one KVM_RUN and nothing else; the exit loop lives in run_loop.ts.
 * KVM_RUN is a synchronous FFI call, so it runs on the thread that created the vCPU (the
 * thread the watchdog kicks: {@link Vcpu.tid}).
 * @module
 */

import { hex } from "./units.ts";
import { errno, libc, MAP, PROT } from "../ffi/libc.ts";
import { ERRNO } from "../ffi/errno.ts";
import { GUESTDBG, IOCTL, MP_STATE_NAMES } from "../ffi/uapi.ts";
import {
  KVM_CPUID2,
  KVM_CPUID_ENTRY2,
  KVM_DTABLE,
  KVM_FPU,
  KVM_GUEST_DEBUG,
  KVM_MP_STATE_ARGS,
  KVM_REGS,
  KVM_SEGMENT,
  KVM_SREGS,
  KVM_SREGS_DTABLES,
  KVM_SREGS_SEGMENTS,
  KVM_TRANSLATION,
} from "../ffi/structs.ts";
import { decode, Decoded, Encodable, encode } from "../ffi/struct_codec.ts";
import { ClosedError, KvmError } from "./errors.ts";
import { ioctlBuf, ioctlInt, OwnedFd } from "./fd.ts";
import { Mapping, mmapRaw } from "./mapping.ts";
import { classifyRunFailure, ExitView } from "./exit_view.ts";
import type { Vm } from "./vm.ts";

/** General purpose registers (`struct kvm_regs`), all bigint. */
export type Regs = Decoded<typeof KVM_REGS.fields>;
/** One segment register (`struct kvm_segment`). */
export type Segment = Decoded<typeof KVM_SEGMENT.fields>;
/** A descriptor table register (`struct kvm_dtable`). */
export type Dtable = Decoded<typeof KVM_DTABLE.fields>;
/** Segment register names in `struct kvm_sregs`. */
export type SegmentName = keyof typeof KVM_SREGS_SEGMENTS;
/** Special registers (`struct kvm_sregs`). */
export type Sregs = Decoded<typeof KVM_SREGS.fields> & Record<SegmentName, Segment> & { gdt: Dtable; idt: Dtable };
/** A partial update of the special registers: segments and tables may be partial too. */
export type SregsUpdate =
  & Encodable<typeof KVM_SREGS.fields>
  & { [K in SegmentName]?: Encodable<typeof KVM_SEGMENT.fields> }
  & { gdt?: Encodable<typeof KVM_DTABLE.fields>; idt?: Encodable<typeof KVM_DTABLE.fields> };
/** FPU state (`struct kvm_fpu`). */
export type Fpu = Decoded<typeof KVM_FPU.fields>;
/** One CPUID entry (`struct kvm_cpuid_entry2`). */
export type CpuidEntry = Decoded<typeof KVM_CPUID_ENTRY2.fields>;

/** KVM_TRANSLATE's answer for one linear address. */
export interface Translation {
  linear: bigint;
  physical: bigint;
  valid: boolean;
  writeable: boolean;
  usermode: boolean;
}

/** The names of general purpose registers, in `struct kvm_regs` order. */
export const REG_NAMES = Object.keys(KVM_REGS.fields) as (keyof Regs)[];

/** What {@link Vcpu.setGuestDebug} takes. */
export interface GuestDebugOptions {
  /** Single-step: a KVM_EXIT_DEBUG after each instruction. */
  singleStep?: boolean;
  /** Raw extra control bits (GUESTDBG.*). */
  control?: number;
  /** debugreg[0..7] (DR0-3, DR6, DR7 at 4..7 as in the uapi). */
  debugreg?: bigint[];
}

const KVM_RUN_REQ = IOCTL.KVM_RUN;

/** A vCPU of a {@link Vm}. Closing it unmaps kvm_run and closes the fd; the VM closes it too. */
export class Vcpu {
  readonly #fd: OwnedFd;
  /** The fd number for KVM_RUN (no getter on the hot path); -1 once closed. */
  #fdNum: number;
  #run: Mapping | undefined;
  readonly #regs = new Uint8Array(KVM_REGS.size);
  readonly #regsView = new DataView(this.#regs.buffer);
  readonly #sregs = new Uint8Array(KVM_SREGS.size);
  /** The decoder of the current exit, over this vCPU's kvm_run (made once). */
  readonly exit: ExitView;
  /** The thread that created the vCPU, which runs KVM_RUN and receives the kick. */
  readonly tid: number;
  /** The size KVM_GET_VCPU_MMAP_SIZE gave. */
  readonly mmapSize: number;
  /** Single-step state as last set. */
  #singleStep = false;
  /** KVM_GET_CPUID2's answer, until the next setCpuid. */
  #cpuid: CpuidEntry[] | undefined;
  /** True after KVM_RUN returned an exit whose operation the next KVM_RUN completes (IO, MMIO, …). */
  #pending = false;

  /** Made by {@link Vm.createVcpu}. */
  constructor(readonly vm: Vm, readonly id: number, fd: number, private readonly onClose: (v: Vcpu) => void) {
    this.name = vm.kvm.nextName("vcpu");
    this.#fd = new OwnedFd(fd, this.name);
    this.#fdNum = fd;
    this.mmapSize = vm.kvm.vcpuMmapSize();
    try {
      const p = mmapRaw(BigInt(this.mmapSize), PROT.READ | PROT.WRITE, MAP.SHARED, fd, 0n);
      this.#run = new Mapping(p, BigInt(this.mmapSize), {
        source: `${this.name}.kvm_run`,
        offset: 0n,
        shared: true,
        prot: "rw",
      });
    } catch (e) {
      this.#fd.close();
      throw e;
    }
    this.exit = new ExitView(
      Deno.UnsafePointerView.getArrayBuffer(this.#run.pointer, this.mmapSize),
      this,
    );
    this.tid = libc().gettid();
  }

  /**
   * Its name (`vcpu3`): unique under its Kvm (one counter across VMs), so not the vCPU id, which
   * counts per VM ({@link id}).
   */
  readonly name: string;

  /** The fd number. */
  get fd(): number {
    return this.#fd.fd;
  }

  /** True until closed. */
  get open(): boolean {
    return this.#fd.open;
  }

  /** The host address of the kvm_run mapping (for the watchdog's immediate_exit write). */
  get runAddress(): bigint {
    if (!this.#run) throw new ClosedError(this.name);
    return this.#run.address;
  }

  /**
   * One KVM_RUN. Returns 0 when the kernel returned to userspace with an exit, or the errno
   * when KVM_RUN failed; the exit view is updated either way (`exit.reason`, `exit.errno`).
   * EINTR is an INTR exit; EFAULT/EHWPOISON with exit_reason MEMORY_FAULT is a MEMORY_FAULT
   * exit. Any other failure throws a KvmError. No allocation.
   */
  run(): number {
    const r = libc().ioctl(this.#fdNum, KVM_RUN_REQ, 0n);
    const x = this.exit;
    if (r >= 0) {
      x.errno = 0;
      x.reason = x.rawReason;
      this.#pending = true;
      return 0;
    }
    this.#pending = false;
    const e = errno();
    // Closed: KVM_RUN went to fd -1 (EBADF), never to whatever reuses the old number now.
    if (this.#fdNum < 0) return this.#fd.fd; // throws ClosedError
    x.errno = e;
    x.reason = classifyRunFailure(e, x.rawReason);
    if (x.reason >= 0) return e;
    throw new KvmError({ syscall: "ioctl", op: "KVM_RUN", errno: e, args: { vcpu: this.name, id: this.id } });
  }

  /**
   * Completes the operation of the last exit (an IO or MMIO access finishes only on the next
   * KVM_RUN) by a KVM_RUN with immediate_exit set, as api.rst asks before changing vCPU state.
   * setRegs/setSregs/setFpu call it, so a loader can reuse a vCPU that stopped mid-instruction.
   */
  completePending(): void {
    if (!this.#pending) return;
    const x = this.exit;
    x.immediateExit = 1;
    try {
      this.run();
    } finally {
      x.immediateExit = 0;
      this.#pending = false;
    }
  }

  /** KVM_GET_REGS. */
  getRegs(): Regs {
    ioctlBuf(this.fd, IOCTL.KVM_GET_REGS, this.#regs, { vcpu: this.name, id: this.id });
    return decode(KVM_REGS, this.#regs);
  }

  /** One register (KVM_GET_REGS), without building the whole object. */
  getReg(name: keyof Regs): bigint {
    ioctlBuf(this.fd, IOCTL.KVM_GET_REGS, this.#regs, { vcpu: this.name, id: this.id });
    return this.#regsView.getBigUint64(KVM_REGS.fields[name].offset, true);
  }

  /** KVM_SET_REGS of the given registers; the others keep their current values (read first). */
  setRegs(update: Encodable<typeof KVM_REGS.fields>): void {
    for (const k of Object.keys(update)) {
      if (!(k in KVM_REGS.fields)) throw new RangeError(`unknown register '${k}' (known: ${REG_NAMES.join(", ")})`);
    }
    this.completePending();
    ioctlBuf(this.fd, IOCTL.KVM_GET_REGS, this.#regs, { vcpu: this.name, id: this.id });
    encode(KVM_REGS, update, this.#regs);
    ioctlBuf(this.fd, IOCTL.KVM_SET_REGS, this.#regs, { vcpu: this.name, id: this.id, ...update });
  }

  /** KVM_GET_SREGS, segments and tables decoded. */
  getSregs(): Sregs {
    ioctlBuf(this.fd, IOCTL.KVM_GET_SREGS, this.#sregs, { vcpu: this.name, id: this.id });
    const out = decode(KVM_SREGS, this.#sregs) as Record<string, unknown>;
    for (const [k, off] of Object.entries(KVM_SREGS_SEGMENTS)) out[k] = decode(KVM_SEGMENT, this.#sregs, off);
    for (const [k, off] of Object.entries(KVM_SREGS_DTABLES)) out[k] = decode(KVM_DTABLE, this.#sregs, off);
    return out as Sregs;
  }

  /** KVM_SET_SREGS of the given fields (segments field by field); the rest keep their values. */
  setSregs(update: SregsUpdate): void {
    this.completePending();
    ioctlBuf(this.fd, IOCTL.KVM_GET_SREGS, this.#sregs, { vcpu: this.name, id: this.id });
    const scalars: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(update)) {
      if (v === undefined) continue;
      if (k in KVM_SREGS_SEGMENTS) {
        encode(
          KVM_SEGMENT,
          v as Encodable<typeof KVM_SEGMENT.fields>,
          this.#sregs,
          KVM_SREGS_SEGMENTS[k as SegmentName],
        );
      } else if (k in KVM_SREGS_DTABLES) {
        const off = KVM_SREGS_DTABLES[k as keyof typeof KVM_SREGS_DTABLES];
        encode(KVM_DTABLE, v as Encodable<typeof KVM_DTABLE.fields>, this.#sregs, off);
      } else if (k in KVM_SREGS.fields) {
        scalars[k] = v;
      } else {
        throw new RangeError(`unknown special register '${k}'`);
      }
    }
    encode(KVM_SREGS, scalars as Encodable<typeof KVM_SREGS.fields>, this.#sregs);
    ioctlBuf(this.fd, IOCTL.KVM_SET_SREGS, this.#sregs, { vcpu: this.name, id: this.id });
  }

  /** KVM_GET_FPU. */
  getFpu(): Fpu {
    const b = new Uint8Array(KVM_FPU.size);
    ioctlBuf(this.fd, IOCTL.KVM_GET_FPU, b, { vcpu: this.name, id: this.id });
    return decode(KVM_FPU, b);
  }

  /** KVM_SET_FPU of the given fields (the rest as KVM_GET_FPU reports them). */
  setFpu(update: Encodable<typeof KVM_FPU.fields>): void {
    this.completePending();
    const b = new Uint8Array(KVM_FPU.size);
    ioctlBuf(this.fd, IOCTL.KVM_GET_FPU, b, { vcpu: this.name, id: this.id });
    encode(KVM_FPU, update, b);
    ioctlBuf(this.fd, IOCTL.KVM_SET_FPU, b, { vcpu: this.name, id: this.id });
  }

  /** KVM_SET_CPUID2 with `entries`, by default what KVM_GET_SUPPORTED_CPUID answers. Returns the count set. */
  setCpuid(entries?: CpuidEntry[]): number {
    this.#cpuid = undefined;
    if (entries === undefined) {
      // The default goes to KVM_SET_CPUID2 as the kernel wrote it (no decode/encode), fetched
      // once per Kvm: it cannot change for a system fd. Saves ~0.7 ms per vCPU set-up.
      const raw = supportedCpuidRaw(this.vm);
      ioctlBuf(this.fd, IOCTL.KVM_SET_CPUID2, raw.buf, { vcpu: this.name, id: this.id, nent: raw.nent });
      return raw.nent;
    }
    const buf = encodeCpuid(entries, entries.length);
    ioctlBuf(this.fd, IOCTL.KVM_SET_CPUID2, buf, { vcpu: this.name, id: this.id, nent: entries.length });
    return entries.length;
  }

  /** KVM_GET_CPUID2: the CPUID entries this vCPU was given (none before any KVM_SET_CPUID2). Kept until setCpuid. */
  getCpuid(): CpuidEntry[] {
    const fd = this.fd; // ClosedError once closed, cached answer or not
    if (this.#cpuid) return this.#cpuid;
    const { buf, nent } = readCpuid2(fd, "KVM_GET_CPUID2", { vcpu: this.name, id: this.id });
    const out: CpuidEntry[] = [];
    for (let i = 0; i < nent; i++) {
      out.push(decode(KVM_CPUID_ENTRY2, buf, KVM_CPUID2.size + i * KVM_CPUID_ENTRY2.size));
    }
    return this.#cpuid = out;
  }

  /** KVM_GET_MP_STATE: number and name. */
  getMpState(): { state: number; name: string } {
    const b = new Uint8Array(KVM_MP_STATE_ARGS.size);
    ioctlBuf(this.fd, IOCTL.KVM_GET_MP_STATE, b, { vcpu: this.name, id: this.id });
    const state = decode(KVM_MP_STATE_ARGS, b).mp_state;
    return { state, name: MP_STATE_NAMES[state] ?? `#${state}` };
  }

  /** KVM_SET_MP_STATE by name (`RUNNABLE`, `HALTED`, …) or number. */
  setMpState(state: string | number): void {
    const n = typeof state === "number"
      ? state
      : Number(Object.entries(MP_STATE_NAMES).find(([, v]) => v === state.toUpperCase())?.[0] ?? NaN);
    if (Number.isNaN(n)) {
      throw new RangeError(`unknown MP state '${state}' (known: ${Object.values(MP_STATE_NAMES).join(", ")})`);
    }
    ioctlBuf(this.fd, IOCTL.KVM_SET_MP_STATE, encode(KVM_MP_STATE_ARGS, { mp_state: n }), {
      vcpu: this.name,
      id: this.id,
      mp_state: MP_STATE_NAMES[n] ?? n,
    });
  }

  /** KVM_SET_GUEST_DEBUG. `{singleStep: true}` asks for a DEBUG exit after every instruction; `{}` turns debug off. */
  setGuestDebug(opts: GuestDebugOptions = {}): void {
    let control = opts.control ?? 0;
    if (opts.singleStep) control |= GUESTDBG.ENABLE | GUESTDBG.SINGLESTEP;
    if (opts.debugreg) control |= GUESTDBG.ENABLE;
    const b = encode(KVM_GUEST_DEBUG, { control, debugreg: opts.debugreg ?? [] });
    ioctlBuf(this.fd, IOCTL.KVM_SET_GUEST_DEBUG, b, { vcpu: this.name, id: this.id, control: hex(control) });
    this.#singleStep = !!opts.singleStep;
  }

  /** Whether single-step was last switched on by {@link setGuestDebug}. */
  get singleStep(): boolean {
    return this.#singleStep;
  }

  /** KVM_TRANSLATE: the guest's own page tables walked by KVM for a linear address. */
  translate(linear: bigint): Translation {
    const b = encode(KVM_TRANSLATION, { linear_address: linear });
    ioctlBuf(this.fd, IOCTL.KVM_TRANSLATE, b, { vcpu: this.name, id: this.id, linear_address: hex(linear) });
    const t = decode(KVM_TRANSLATION, b);
    return {
      linear,
      physical: t.physical_address,
      valid: t.valid !== 0,
      writeable: t.writeable !== 0,
      usermode: t.usermode !== 0,
    };
  }

  /** Sets or clears kvm_run.immediate_exit. */
  setImmediateExit(on: boolean): void {
    this.exit.immediateExit = on ? 1 : 0;
  }

  /** Unmaps kvm_run and closes the fd; safe to call twice. */
  close(): void {
    if (!this.#fd.open) return;
    this.exit.detach();
    this.#run?.unmap();
    this.#run = undefined;
    this.#fdNum = -1;
    this.#fd.close();
    this.onClose(this);
  }

  /** `using cpu = vm.createVcpu()` */
  [Symbol.dispose](): void {
    this.close();
  }

  /** A plain description for listings. */
  describe(): Record<string, unknown> {
    return { name: this.name, id: this.id, fd: this.#fd.raw, tid: this.tid, mmapSize: this.mmapSize };
  }
}

/** Capacity asked of KVM_GET_SUPPORTED_CPUID (E2BIG makes it grow). */
const CPUID_MAX = 256;

function encodeCpuid(entries: CpuidEntry[], capacity: number): Uint8Array<ArrayBuffer> {
  const buf = new Uint8Array(KVM_CPUID2.size + capacity * KVM_CPUID_ENTRY2.size);
  encode(KVM_CPUID2, { nent: entries.length }, buf);
  entries.forEach((e, i) => encode(KVM_CPUID_ENTRY2, e, buf, KVM_CPUID2.size + i * KVM_CPUID_ENTRY2.size));
  return buf;
}

/** KVM_GET_SUPPORTED_CPUID's answer as the kernel wrote it: a kvm_cpuid2 buffer and its entry count. */
function fetchSupportedCpuid(vm: Vm): { buf: Uint8Array<ArrayBuffer>; nent: number } {
  return readCpuid2(vm.kvm.fd, "KVM_GET_SUPPORTED_CPUID", {});
}

/**
 * A kvm_cpuid2 read (KVM_GET_CPUID2, KVM_GET_SUPPORTED_CPUID): starts with room for CPUID_MAX
 * entries and doubles it while the kernel answers E2BIG (up to 4096).
 */
function readCpuid2(
  fd: number,
  op: "KVM_GET_CPUID2" | "KVM_GET_SUPPORTED_CPUID",
  args: Record<string, string | number>,
): { buf: Uint8Array<ArrayBuffer>; nent: number } {
  for (let cap = CPUID_MAX;; cap *= 2) {
    const buf = encodeCpuid([], cap);
    encode(KVM_CPUID2, { nent: cap }, buf);
    const r = libc().ioctl_buf(fd, IOCTL[op], Deno.UnsafePointer.of(buf));
    if (r < 0) {
      const e = errno();
      if (e === ERRNO.E2BIG && cap < 4096) continue;
      throw new KvmError({ syscall: "ioctl", op, errno: e, args: { ...args, nent: cap } });
    }
    return { buf, nent: decode(KVM_CPUID2, buf).nent };
  }
}

const supportedRaw = new WeakMap<object, { buf: Uint8Array<ArrayBuffer>; nent: number }>();

/** {@link fetchSupportedCpuid}, once per Kvm (the buffer is only read by KVM_SET_CPUID2). */
function supportedCpuidRaw(vm: Vm): { buf: Uint8Array<ArrayBuffer>; nent: number } {
  let r = supportedRaw.get(vm.kvm);
  if (!r) supportedRaw.set(vm.kvm, r = fetchSupportedCpuid(vm));
  return r;
}

/** KVM_GET_SUPPORTED_CPUID on the system fd of `vm`'s Kvm, decoded (asked afresh each call). */
export function supportedCpuid(vm: Vm): CpuidEntry[] {
  const { buf, nent } = fetchSupportedCpuid(vm);
  const out: CpuidEntry[] = [];
  for (let i = 0; i < nent; i++) out.push(decode(KVM_CPUID_ENTRY2, buf, KVM_CPUID2.size + i * KVM_CPUID_ENTRY2.size));
  return out;
}

/** KVM_CREATE_VCPU on `vm` (used by {@link Vm.createVcpu}). */
export function createVcpu(vm: Vm, id: number, onClose: (v: Vcpu) => void): Vcpu {
  const fd = ioctlInt(vm.fd, IOCTL.KVM_CREATE_VCPU, id, { id });
  return new Vcpu(vm, id, fd, onClose);
}
