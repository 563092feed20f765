/**
 * The current exit, read in place from a vCPU's mmapped `kvm_run`. One ExitView per vCPU, made
 * once: every getter reads the mapping through the same DataView, so decoding an exit on the
 * hot path allocates nothing (addresses are also offered as numbers: a GPA fits in 52 bits).
 * Offsets come from `KVM_RUN_LAYOUT` in ffi/structs.ts.
 * @module
 */

import { KVM_RUN_LAYOUT } from "../ffi/structs.ts";
import { EXIT, exitReasonName, IO_DIRECTION } from "../ffi/uapi.ts";
import { ERRNO } from "../ffi/errno.ts";

const F = KVM_RUN_LAYOUT.fields;
const O_IMMEDIATE = F.immediate_exit.offset;
const O_REASON = F.exit_reason.offset;
const O_IO_DIR = F.io_direction.offset;
const O_IO_SIZE = F.io_size.offset;
const O_IO_PORT = F.io_port.offset;
const O_IO_COUNT = F.io_count.offset;
const O_IO_DATA = F.io_data_offset.offset;
const O_MMIO_ADDR = F.mmio_phys_addr.offset;
const O_MMIO_DATA = F.mmio_data.offset;
const O_MMIO_LEN = F.mmio_len.offset;
const O_MMIO_WRITE = F.mmio_is_write.offset;
const O_HC_NR = F.hypercall_nr.offset;
const O_HC_ARGS = F.hypercall_args.offset;
const O_HC_RET = F.hypercall_ret.offset;
const O_HC_FLAGS = F.hypercall_flags.offset;
const O_INT_SUB = F.internal_suberror.offset;
const O_INT_NDATA = F.internal_ndata.offset;
const O_INT_DATA = F.internal_data.offset;
const O_SYS_TYPE = F.system_event_type.offset;
const O_SYS_NDATA = F.system_event_ndata.offset;
const O_SYS_DATA = F.system_event_data.offset;
const O_MF_FLAGS = F.memory_fault_flags.offset;
const O_MF_GPA = F.memory_fault_gpa.offset;
const O_MF_SIZE = F.memory_fault_size.offset;
const O_FAIL_HW = F.hardware_reason.offset;
const O_FAIL_CPU = F.fail_entry_cpu.offset;
const O_DBG_EXC = F.debug_exception.offset;
const O_DBG_PC = F.debug_pc.offset;
const O_DBG_DR6 = F.debug_dr6.offset;
const O_DBG_DR7 = F.debug_dr7.offset;
const O_EX_NR = F.ex_exception.offset;
const O_EX_ERR = F.ex_error_code.offset;
/** Array lengths of the internal/system_event data fields. */
const MAX_DATA = F.internal_data.count;

const TWO32 = 4294967296;

/**
 * What a failed KVM_RUN (-1, `errno`) means, given the exit_reason the kernel left in kvm_run:
 * EINTR is an INTR exit (a signal or immediate_exit); EFAULT/EHWPOISON with exit_reason
 * MEMORY_FAULT is a MEMORY_FAULT exit (KVM_CAP_MEMORY_FAULT_INFO). -1: a real error.
 */
export function classifyRunFailure(errno: number, rawReason: number): number {
  if (errno === ERRNO.EINTR) return EXIT.INTR;
  if ((errno === ERRNO.EFAULT || errno === ERRNO.EHWPOISON) && rawReason === EXIT.MEMORY_FAULT) {
    return EXIT.MEMORY_FAULT;
  }
  return -1;
}

/**
 * The decoder of one vCPU's current exit. `reason` and `errno` are set by `Vcpu.run()`
 * (INTR on EINTR, MEMORY_FAULT on EFAULT/EHWPOISON with that exit reason); the rest are getters
 * over kvm_run, valid for the exit kind in `reason`.
 */
export class ExitView {
  /** The exit reason of the last KVM_RUN as kvmsh classifies it (KVM_EXIT_*); -1 before any run. */
  reason = -1;
  /** errno of the last KVM_RUN, 0 when it returned normally. */
  errno = 0;
  #dv: DataView;

  /** @param buffer the kvm_run mapping (or a fake one in tests); `vcpu` is the owner, for messages. */
  constructor(buffer: ArrayBuffer, readonly vcpu?: { readonly id: number; readonly name?: string }) {
    this.#dv = new DataView(buffer);
  }

  /** The exit reason the kernel wrote into kvm_run (may be stale after EINTR). */
  get rawReason(): number {
    return this.#dv.getUint32(O_REASON, true);
  }

  /** The exit's name (`IO`, `HLT`, …). */
  get name(): string {
    return exitReasonName(this.reason);
  }

  /** kvm_run.immediate_exit. */
  get immediateExit(): number {
    return this.#dv.getUint8(O_IMMEDIATE);
  }
  set immediateExit(v: number) {
    this.#dv.setUint8(O_IMMEDIATE, v);
  }

  // ---- KVM_EXIT_IO
  /** I/O port. */
  get ioPort(): number {
    return this.#dv.getUint16(O_IO_PORT, true);
  }
  /** Access width in bytes (1, 2, 4). */
  get ioSize(): number {
    return this.#dv.getUint8(O_IO_SIZE);
  }
  /** 1 for OUT, 0 for IN. */
  get ioDirection(): number {
    return this.#dv.getUint8(O_IO_DIR);
  }
  /** True for OUT (guest writes). */
  get ioIsOut(): boolean {
    return this.#dv.getUint8(O_IO_DIR) === IO_DIRECTION.OUT;
  }
  /** Number of elements (rep ins/outs). */
  get ioCount(): number {
    return this.#dv.getUint32(O_IO_COUNT, true);
  }
  /** Offset of the data in the kvm_run mapping. */
  get ioDataOffset(): number {
    return this.#dv.getUint32(O_IO_DATA, true);
  }
  /** Element `i` of the I/O data (the value an OUT wrote, or the value an IN will read). */
  ioElement(i = 0): number {
    const off = this.ioDataOffset + i * this.ioSize;
    switch (this.ioSize) {
      case 1:
        return this.#dv.getUint8(off);
      case 2:
        return this.#dv.getUint16(off, true);
      default:
        return this.#dv.getUint32(off, true);
    }
  }
  /** Sets element `i` of the I/O data (what the guest's IN receives). */
  setIoElement(v: number, i = 0): void {
    const off = this.ioDataOffset + i * this.ioSize;
    switch (this.ioSize) {
      case 1:
        return this.#dv.setUint8(off, v);
      case 2:
        return this.#dv.setUint16(off, v, true);
      default:
        return this.#dv.setUint32(off, v >>> 0, true);
    }
  }
  /** Element 0 of the I/O data. */
  get ioValue(): number {
    return this.ioElement(0);
  }
  set ioValue(v: number) {
    this.setIoElement(v, 0);
  }
  /** Every element (allocates: for display). */
  ioValues(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.ioCount; i++) out.push(this.ioElement(i));
    return out;
  }

  // ---- KVM_EXIT_MMIO
  /** MMIO guest physical address as a number (exact below 2^53). */
  get mmioAddress(): number {
    return this.#dv.getUint32(O_MMIO_ADDR, true) + this.#dv.getUint32(O_MMIO_ADDR + 4, true) * TWO32;
  }
  /** MMIO guest physical address. */
  get mmioAddr(): bigint {
    return this.#dv.getBigUint64(O_MMIO_ADDR, true);
  }
  /** Access length in bytes (1..8). */
  get mmioLen(): number {
    return this.#dv.getUint32(O_MMIO_LEN, true);
  }
  /** True for a guest write. */
  get mmioIsWrite(): boolean {
    return this.#dv.getUint8(O_MMIO_WRITE) !== 0;
  }
  /** The data's low 32 bits (what the guest wrote, or what its read will see). */
  get mmioValue(): number {
    const len = this.mmioLen;
    if (len === 1) return this.#dv.getUint8(O_MMIO_DATA);
    if (len === 2) return this.#dv.getUint16(O_MMIO_DATA, true);
    return this.#dv.getUint32(O_MMIO_DATA, true);
  }
  /** Sets the data a guest read receives (up to 32 bits; use mmioData64 for 8-byte reads). */
  set mmioValue(v: number) {
    this.#dv.setUint32(O_MMIO_DATA, v >>> 0, true);
    this.#dv.setUint32(O_MMIO_DATA + 4, 0, true);
  }
  /** All 8 data bytes as a u64. */
  get mmioData64(): bigint {
    return this.#dv.getBigUint64(O_MMIO_DATA, true);
  }
  set mmioData64(v: bigint) {
    this.#dv.setBigUint64(O_MMIO_DATA, BigInt.asUintN(64, v), true);
  }
  /** The data bytes the access covers (allocates: for display). */
  mmioBytes(): number[] {
    const out: number[] = [];
    for (let i = 0; i < Math.min(this.mmioLen, 8); i++) out.push(this.#dv.getUint8(O_MMIO_DATA + i));
    return out;
  }

  // ---- KVM_EXIT_HYPERCALL
  /** Hypercall number. */
  get hypercallNr(): number {
    return this.#dv.getUint32(O_HC_NR, true) + this.#dv.getUint32(O_HC_NR + 4, true) * TWO32;
  }
  /** Hypercall argument `i` (0..5). */
  hypercallArg(i: number): bigint {
    return this.#dv.getBigUint64(O_HC_ARGS + 8 * i, true);
  }
  /** The value returned to the guest in RAX. */
  get hypercallRet(): bigint {
    return this.#dv.getBigUint64(O_HC_RET, true);
  }
  set hypercallRet(v: bigint) {
    this.#dv.setBigUint64(O_HC_RET, BigInt.asUintN(64, v), true);
  }
  /** Hypercall flags (bit 0: the guest was in long mode). */
  get hypercallFlags(): bigint {
    return this.#dv.getBigUint64(O_HC_FLAGS, true);
  }

  // ---- KVM_EXIT_INTERNAL_ERROR
  /** Suberror (KVM_INTERNAL_ERROR_*). */
  get internalSuberror(): number {
    return this.#dv.getUint32(O_INT_SUB, true);
  }
  /** Number of valid data words. */
  get internalNdata(): number {
    return this.#dv.getUint32(O_INT_NDATA, true);
  }
  /** Data word `i`. */
  internalData(i: number): bigint {
    return this.#dv.getBigUint64(O_INT_DATA + 8 * i, true);
  }

  // ---- KVM_EXIT_SYSTEM_EVENT
  /** Event type (KVM_SYSTEM_EVENT_*). */
  get systemEventType(): number {
    return this.#dv.getUint32(O_SYS_TYPE, true);
  }
  /** Number of valid data words. */
  get systemEventNdata(): number {
    return this.#dv.getUint32(O_SYS_NDATA, true);
  }
  /** Data word `i`. */
  systemEventData(i: number): bigint {
    return this.#dv.getBigUint64(O_SYS_DATA + 8 * i, true);
  }

  // ---- KVM_EXIT_MEMORY_FAULT
  /** KVM_MEMORY_EXIT_FLAG_* bits. */
  get memoryFaultFlags(): bigint {
    return this.#dv.getBigUint64(O_MF_FLAGS, true);
  }
  /** Faulting guest physical address. */
  get memoryFaultGpa(): bigint {
    return this.#dv.getBigUint64(O_MF_GPA, true);
  }
  /** Size of the faulting range. */
  get memoryFaultSize(): bigint {
    return this.#dv.getBigUint64(O_MF_SIZE, true);
  }

  // ---- KVM_EXIT_FAIL_ENTRY / UNKNOWN
  /** Hardware exit reason (VMX/SVM). */
  get hardwareReason(): bigint {
    return this.#dv.getBigUint64(O_FAIL_HW, true);
  }
  /** CPU the entry failed on. */
  get failEntryCpu(): number {
    return this.#dv.getUint32(O_FAIL_CPU, true);
  }

  // ---- KVM_EXIT_DEBUG (x86)
  /** Exception vector (1 = #DB, 3 = #BP). */
  get debugException(): number {
    return this.#dv.getUint32(O_DBG_EXC, true);
  }
  /** Guest RIP (linear) of the debug event. */
  get debugPc(): bigint {
    return this.#dv.getBigUint64(O_DBG_PC, true);
  }
  /** DR6. */
  get debugDr6(): bigint {
    return this.#dv.getBigUint64(O_DBG_DR6, true);
  }
  /** DR7. */
  get debugDr7(): bigint {
    return this.#dv.getBigUint64(O_DBG_DR7, true);
  }

  // ---- KVM_EXIT_EXCEPTION
  /** Exception vector. */
  get exceptionNr(): number {
    return this.#dv.getUint32(O_EX_NR, true);
  }
  /** Exception error code. */
  get exceptionErrorCode(): number {
    return this.#dv.getUint32(O_EX_ERR, true);
  }

  /** Max data words of INTERNAL_ERROR / SYSTEM_EVENT. */
  static readonly MAX_DATA = MAX_DATA as number;

  /** Points the view at a dead zero buffer (after munmap), so a stale read cannot crash. */
  detach(): void {
    this.#dv = new DataView(new ArrayBuffer(this.#dv.byteLength));
    this.#detached = true;
  }

  #detached = false;

  /** True once its vCPU closed: the exit it showed is gone (decoding it is a ClosedError). */
  get detached(): boolean {
    return this.#detached;
  }
}
