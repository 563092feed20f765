/**
 * 64-bit long mode: identity-mapped page tables, a GDT with a 64-bit code segment, a data segment
 * and a TSS, and the control registers of long mode. The system area (GDT, TSS, page tables)
 * lives at GPA 0x1000..0x10000, which a memslot must back.
 *
 * The whole low 512 GiB is identity mapped, so a guest access to a GPA without a memslot reaches
 * KVM as an MMIO exit naming the address (not a page fault and a triple fault): with 1 GiB pages
 * where the vCPU's CPUID has pdpe1gb (two table pages), else with 2 MiB pages whose 512 page
 * directories (2 MiB) live in memory the caller provides (`pdArea`; runGuest keeps a slot for
 * them above 512 GiB). Without either, memslots and `extraMaps` are mapped (2 MiB pages).
 * Memslots above 512 GiB are mapped too.
 * @module
 */

import type { Vcpu } from "../vcpu.ts";
import { hex } from "../units.ts";
import { CLEARED_GPRS, type LoadInfo } from "./real_mode.ts";
import { vcpuGuestAbi } from "../run_loop.ts";

/** Where the long-mode loader puts things (guest physical). */
export const LONG_MODE_LAYOUT = Object.freeze({
  gdt: 0x1000n,
  tss: 0x1800n,
  tables: 0x2000n,
  tablesEnd: 0x10000n,
  /** Default load address of a flat long-mode image (as the guest library links). */
  image: 0x100000n,
});

/** Selectors of the GDT the loader writes. */
export const SELECTOR = Object.freeze({ code: 0x08, data: 0x10, tss: 0x18 });

/** x86 control register bits the loader sets (CR0.PE/PG are also read to find a vCPU's mode: codeAt in run_loop.ts). */
export const CR0 = { PE: 1n, MP: 2n, ET: 0x10n, NE: 0x20n, WP: 0x10000n, PG: 0x80000000n };
const CR4 = { PAE: 0x20n, OSFXSR: 0x200n, OSXMMEXCPT: 0x400n };
/** EFER bits (LMA: long mode active). */
export const EFER = { LME: 0x100n, LMA: 0x400n };
const PTE = { P: 1n, RW: 2n, PS: 0x80n };

const MIB2 = 2n << 20n;
const GIB = 1n << 30n;
const PAGE = 4096n;

/** A guest physical range to map. */
export interface GpaRange {
  gpa: bigint;
  size: bigint;
}

/** Options of {@link setupLongMode}. */
export interface LongModeOptions {
  /** First instruction (guest physical = virtual). */
  entry: bigint;
  /** Initial RSP. */
  stack: bigint;
  /** Values for rdi, rsi, rdx, rcx, r8, r9 (as the selftests' vcpu_args_set). */
  args?: readonly bigint[];
  /** Ranges to map besides the memslots (e.g. an address with no memslot, to see its MMIO exit). */
  extraMaps?: readonly GpaRange[];
  /** Use 1 GiB pages where possible (default: when the vCPU's CPUID says pdpe1gb). */
  hugePages?: boolean;
  /**
   * Without 1 GiB pages: guest physical address of {@link PD_AREA_SIZE} bytes of guest memory
   * (outside the low 512 GiB is best) for the 512 page directories of a 2 MiB-page map of the
   * low 512 GiB. `pdAreaWritten: true` skips rewriting them (they never change).
   */
  pdArea?: bigint;
  pdAreaWritten?: boolean;
}

/** What a long-mode loader (flat image, ELF) passes on to {@link setupLongMode}; entry is the image's. */
export type LongModeLoadOptions = Omit<LongModeOptions, "entry" | "stack" | "hugePages"> & {
  /** Initial RSP (default: the top of the memslot holding GPA 0, {@link defaultStack}). */
  stack?: bigint;
};

/** Bytes of the 512 page directories that map the low 512 GiB with 2 MiB pages. */
export const PD_AREA_SIZE = 512n * 4096n;

/** How the low 512 GiB is mapped: whole with 1 GiB or 2 MiB pages, or only memslots/extraMaps. */
export type LowMap = "1g" | "2m" | "ranges";

/** What the page tables map, for display. */
export interface PageTableInfo {
  pml4: bigint;
  pages2m: number;
  pages1g: number;
  tableBytes: number;
  ranges: GpaRange[];
  /** How the low 512 GiB is mapped. */
  lowMap: LowMap;
}

/** The argument registers in vcpu_args_set order. */
export const ARG_REGS = ["rdi", "rsi", "rdx", "rcx", "r8", "r9"] as const;

/** Guest arguments as registers, in {@link ARG_REGS} order (RangeError past six). */
export function argRegs(args: readonly bigint[]): Record<string, bigint> {
  if (args.length > ARG_REGS.length) {
    throw new RangeError(`at most ${ARG_REGS.length} args (${ARG_REGS.join(", ")})`);
  }
  return Object.fromEntries(args.map((v, i) => [ARG_REGS[i], v]));
}

/** True when the CPUID the vCPU was given (KVM_GET_CPUID2) has pdpe1gb (1 GiB pages). */
export function vcpuHas1g(vcpu: Vcpu): boolean {
  const e = vcpu.getCpuid().find((c) => c.function === 0x80000001);
  return !!e && ((e.edx >>> 26) & 1) === 1;
}

const LOW = 512n * GIB;

/** The 512 page directories of a 2 MiB-page identity map of the low 512 GiB: directory i maps GiB i. */
export function identityPageDirectories(): Uint8Array {
  return pdCache ??= buildIdentityPageDirectories();
}

let pdCache: Uint8Array | undefined;

function buildIdentityPageDirectories(): Uint8Array {
  const words = new Uint32Array(Number(PD_AREA_SIZE) / 4);
  const flags = Number(PTE.P | PTE.RW | PTE.PS);
  for (let i = 0; i < 512; i++) {
    for (let j = 0; j < 512; j++) {
      const e = (i * 512 + j) * 2;
      words[e] = (((i & 3) << 30) | (j << 21) | flags) >>> 0;
      words[e + 1] = i >>> 2;
    }
  }
  return new Uint8Array(words.buffer);
}

/**
 * Builds identity page tables for `ranges` into a buffer placed at `base`. `low` maps the whole
 * low 512 GiB as well: `1g` with 1 GiB pages, `{ pds }` through the page directories at GPA
 * `pds` (see {@link identityPageDirectories}).
 */
export function buildPageTables(
  ranges: readonly GpaRange[],
  base: bigint,
  limit: bigint,
  huge: boolean,
  low?: "1g" | { pds: bigint },
): { bytes: Uint8Array; info: PageTableInfo } {
  const maxPages = Number((limit - base) / PAGE);
  const bytes = new Uint8Array(maxPages * Number(PAGE));
  const dv = new DataView(bytes.buffer);
  let used = 1; // page 0: PML4
  const alloc = (): bigint => {
    if (used >= maxPages) {
      throw new RangeError(`page tables need more than ${maxPages} pages (${hex(base)}..${hex(limit)})`);
    }
    return base + BigInt(used++) * PAGE;
  };
  const entry = (table: bigint, idx: number) => Number(table - base) + idx * 8;
  const get = (table: bigint, idx: number) => dv.getBigUint64(entry(table, idx), true);
  const set = (table: bigint, idx: number, v: bigint) => dv.setBigUint64(entry(table, idx), v, true);
  const sub = (table: bigint, idx: number): bigint => {
    const e = get(table, idx);
    if (e & PTE.P) return e & ~0xfffn;
    const t = alloc();
    set(table, idx, t | PTE.P | PTE.RW);
    return t;
  };
  const covered = (lo: bigint, hi: bigint) => {
    // True when [lo, hi) is inside the union of the ranges.
    let at = lo;
    for (const r of [...ranges].sort((a, b) => (a.gpa < b.gpa ? -1 : 1))) {
      if (r.gpa <= at && r.gpa + r.size > at) at = r.gpa + r.size;
      if (at >= hi) return true;
    }
    return at >= hi;
  };
  const pml4 = base;
  let pages2m = 0, pages1g = 0;
  const done2m = new Set<bigint>();
  const done1g = new Set<bigint>();
  if (low !== undefined) {
    const pdpt = sub(pml4, 0);
    for (let i = 0n; i < 512n; i++) {
      if (low === "1g") set(pdpt, Number(i), (i * GIB) | PTE.P | PTE.RW | PTE.PS);
      else set(pdpt, Number(i), (low.pds + i * PAGE) | PTE.P | PTE.RW);
      done1g.add(i * GIB);
    }
    if (low === "1g") pages1g += 512;
    else pages2m += 512 * 512;
  }
  for (const r of ranges) {
    if (r.size <= 0n) continue;
    let from = r.gpa & ~(MIB2 - 1n);
    if (low !== undefined && from < LOW) from = LOW; // the low 512 GiB is mapped already
    for (let a = from; a < r.gpa + r.size; a += MIB2) {
      const g = a & ~(GIB - 1n);
      if (done1g.has(g) || done2m.has(a)) continue;
      const pdpt = sub(pml4, Number((a >> 39n) & 511n));
      const pdptIdx = Number((a >> 30n) & 511n);
      if (huge && !done1g.has(g) && covered(g, g + GIB) && !(get(pdpt, pdptIdx) & PTE.P)) {
        set(pdpt, pdptIdx, g | PTE.P | PTE.RW | PTE.PS);
        done1g.add(g);
        pages1g++;
        continue;
      }
      const pd = sub(pdpt, pdptIdx);
      set(pd, Number((a >> 21n) & 511n), a | PTE.P | PTE.RW | PTE.PS);
      done2m.add(a);
      pages2m++;
    }
  }
  return {
    bytes: bytes.subarray(0, used * Number(PAGE)),
    info: {
      pml4,
      pages2m,
      pages1g,
      tableBytes: used * Number(PAGE) + (low !== undefined && low !== "1g" ? Number(PD_AREA_SIZE) : 0),
      ranges: [...ranges],
      lowMap: low === undefined ? "ranges" : low === "1g" ? "1g" : "2m",
    },
  };
}

function gdtEntry(v: bigint, dv: DataView, off: number) {
  dv.setBigUint64(off, v, true);
}

/**
 * Writes GDT, TSS and page tables into guest memory and puts the vCPU in 64-bit mode at
 * `entry` with `stack`, args in rdi, rsi, rdx, rcx, r8, r9.
 */
export function setupLongMode(vcpu: Vcpu, o: LongModeOptions): PageTableInfo {
  const vm = vcpu.vm;
  const L = LONG_MODE_LAYOUT;
  const ranges: GpaRange[] = vm.memslots.filter((s) => !(o.pdArea !== undefined && s.contains(o.pdArea))).map((
    s,
  ) => ({ gpa: s.gpa, size: s.size }));
  for (const r of o.extraMaps ?? []) ranges.push(r);
  const huge = o.hugePages ?? vcpuHas1g(vcpu);
  const low = huge ? "1g" as const : o.pdArea !== undefined ? { pds: o.pdArea } : undefined;
  if (low && low !== "1g" && !o.pdAreaWritten) vm.writeGuest(low.pds, identityPageDirectories());
  const pt = buildPageTables(ranges, L.tables, L.tablesEnd, huge, low);
  vm.writeGuest(L.tables, pt.bytes);

  // GDT: null, code64, data, 64-bit TSS (16 bytes).
  const gdt = new Uint8Array(0x28);
  const dv = new DataView(gdt.buffer);
  gdtEntry(0x00af9b000000ffffn, dv, SELECTOR.code);
  gdtEntry(0x00cf93000000ffffn, dv, SELECTOR.data);
  const tssLimit = 0x67n;
  const b = L.tss;
  const tssLow = (tssLimit & 0xffffn) | ((b & 0xffffffn) << 16n) | (0x89n << 40n) | (((b >> 24n) & 0xffn) << 56n);
  gdtEntry(tssLow, dv, SELECTOR.tss);
  gdtEntry(b >> 32n, dv, SELECTOR.tss + 8);
  vm.writeGuest(L.gdt, gdt);
  vm.writeGuest(L.tss, new Uint8Array(Number(tssLimit) + 1));

  const data = {
    base: 0n,
    limit: 0xffffffff,
    selector: SELECTOR.data,
    type: 3,
    present: 1,
    dpl: 0,
    db: 1,
    s: 1,
    l: 0,
    g: 1,
  };
  vcpu.setSregs({
    cs: { base: 0n, limit: 0xffffffff, selector: SELECTOR.code, type: 11, present: 1, dpl: 0, db: 0, s: 1, l: 1, g: 1 },
    ds: data,
    es: data,
    fs: data,
    gs: data,
    ss: data,
    tr: {
      base: L.tss,
      limit: Number(tssLimit),
      selector: SELECTOR.tss,
      type: 11,
      present: 1,
      dpl: 0,
      s: 0,
      l: 0,
      g: 0,
    },
    gdt: { base: L.gdt, limit: gdt.length - 1 },
    idt: { base: 0n, limit: 0 },
    cr0: CR0.PE | CR0.MP | CR0.ET | CR0.NE | CR0.WP | CR0.PG,
    cr3: pt.info.pml4,
    cr4: CR4.PAE | CR4.OSFXSR | CR4.OSXMMEXCPT,
    efer: EFER.LME | EFER.LMA,
  });
  const regs: Record<string, bigint> = { rip: o.entry, rsp: o.stack, rflags: 2n };
  vcpu.setRegs({ ...CLEARED_GPRS, ...regs, ...argRegs(o.args ?? []) }); // no register of an earlier guest stays
  vcpuGuestAbi(vcpu, true); // nor its devices' state (COM1's registers)
  return pt.info;
}

/** A flat image at `loadAddress` (default 0x100000), entered at its first byte. */
export function loadLongModeFlat(
  vcpu: Vcpu,
  image: Uint8Array,
  o: LongModeLoadOptions & { loadAddress?: bigint } = {},
): LoadInfo & { pageTables: PageTableInfo } {
  const load = o.loadAddress ?? LONG_MODE_LAYOUT.image;
  vcpu.vm.writeGuest(load, image);
  const stack = o.stack ?? defaultStack(vcpu);
  const pageTables = setupLongMode(vcpu, { ...o, entry: load, stack });
  return { mode: "long", loadAddress: load, entry: load, stack, size: image.length, pageTables };
}

/** The top of the memslot that holds GPA 0 (16-byte aligned), the default long-mode stack. */
export function defaultStack(vcpu: Vcpu): bigint {
  const s = vcpu.vm.memslots.find((m) => m.contains(0n));
  if (!s) throw new RangeError("long mode needs a memslot at GPA 0 (GDT and page tables live at 0x1000..0x10000)");
  return (s.gpa + s.size) & ~0xfn;
}
