/**
 * Flat binary into 16-bit real mode, as kvmtool does: the image at segment 0x1000 offset 0
 * (GPA 0x10000), every segment register 0x1000, IP 0, SP 0x8000; all overridable.
 * @module
 */

import type { Vcpu } from "../vcpu.ts";
import { vcpuGuestAbi } from "../run_loop.ts";

/** Where a real-mode image goes and how the vCPU starts. */
export interface RealModeOptions {
  /** Segment for CS/DS/ES/FS/GS/SS (default 0x1000). */
  segment?: number;
  /** Offset of the image in the segment, also the initial IP (default 0). */
  offset?: number;
  /** Initial SP (default 0x8000). */
  sp?: number;
}

/** kvmtool's defaults. */
export const REAL_MODE_DEFAULTS = Object.freeze({ segment: 0x1000, offset: 0, sp: 0x8000 });

/** CR0 the loader sets: the reset value (CD | NW | ET), protection and paging off. */
export const REAL_MODE_CR0 = 0x60000010n;

/**
 * The general-purpose registers a loader zeroes (all but RIP, RSP and RFLAGS, which it sets): a
 * guest loaded on a vCPU that ran before starts as on a new one, with nothing of the last guest's
 * registers (a guest argument not given is 0, not what the previous run left in that register).
 */
export const CLEARED_GPRS: Readonly<Record<string, bigint>> = Object.freeze(Object.fromEntries(
  ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"]
    .map((r) => [r, 0n]),
));

/** What a loader did: where the image went and where execution starts. */
export interface LoadInfo {
  mode: "real" | "long";
  /** Guest physical address of the image's first byte. */
  loadAddress: bigint;
  /** Guest physical (= linear) address of the first instruction. */
  entry: bigint;
  /** Initial stack pointer. */
  stack: bigint;
  size: number;
}

/**
 * Writes `image` into guest memory and sets the vCPU up for real mode (the other GPRs zeroed:
 * {@link CLEARED_GPRS}; the vCPU's guest ABI state, COM1's registers, from reset).
 */
export function loadRealMode(vcpu: Vcpu, image: Uint8Array, o: RealModeOptions = {}): LoadInfo {
  const segment = o.segment ?? REAL_MODE_DEFAULTS.segment;
  const offset = o.offset ?? REAL_MODE_DEFAULTS.offset;
  const sp = o.sp ?? REAL_MODE_DEFAULTS.sp;
  if (segment < 0 || segment > 0xffff || offset < 0 || offset > 0xffff || sp < 0 || sp > 0xffff) {
    throw new RangeError("real mode segment, offset and sp are 16-bit values");
  }
  const base = BigInt(segment) << 4n;
  const load = base + BigInt(offset);
  vcpu.vm.writeGuest(load, image);
  const seg = { selector: segment, base, limit: 0xffff };
  vcpu.setSregs({
    cs: { ...seg, type: 11, s: 1, present: 1, db: 0, l: 0, g: 0 },
    ds: { ...seg, type: 3, s: 1, present: 1, db: 0, g: 0 },
    es: { ...seg, type: 3, s: 1, present: 1, db: 0, g: 0 },
    fs: { ...seg, type: 3, s: 1, present: 1, db: 0, g: 0 },
    gs: { ...seg, type: 3, s: 1, present: 1, db: 0, g: 0 },
    ss: { ...seg, type: 3, s: 1, present: 1, db: 0, g: 0 },
    cr0: REAL_MODE_CR0,
    cr4: 0n,
    efer: 0n,
  });
  vcpu.setRegs({ ...CLEARED_GPRS, rip: BigInt(offset), rsp: BigInt(sp), rflags: 2n });
  vcpuGuestAbi(vcpu, true); // a new guest: its devices (COM1's registers) from reset too
  return { mode: "real", loadAddress: load, entry: load, stack: base + BigInt(sp), size: image.length };
}
