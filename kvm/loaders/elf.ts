/**
 * ELF64 (static, freestanding, x86-64) images: PT_LOAD segments copied to their physical
 * addresses (identity mapped, so p_paddr = p_vaddr for the guest library), bss zeroed, entry
 * point from the header, then long mode.
 * @module
 */

import { ELF64_EHDR, ELF64_PHDR } from "../../ffi/structs.ts";
import { ELF, ELF_MAGIC } from "../../ffi/elf.ts";
import { decode } from "../../ffi/struct_codec.ts";
import type { Vcpu } from "../vcpu.ts";
import { hex } from "../units.ts";
import { defaultStack, type LongModeLoadOptions, type PageTableInfo, setupLongMode } from "./long_mode.ts";
import type { LoadInfo } from "./real_mode.ts";

const { PT_LOAD, EM_X86_64, ELFCLASS64, ELFDATA2LSB } = ELF;

/** True when `bytes` start with the ELF magic. */
export function isElf(bytes: Uint8Array): boolean {
  return bytes.length >= ELF_MAGIC.length && ELF_MAGIC.every((b, i) => bytes[i] === b);
}

/** One loadable segment. */
export interface ElfSegment {
  paddr: bigint;
  filesz: bigint;
  memsz: bigint;
  offset: bigint;
  flags: number;
}

/** An ELF64 file's entry and loadable segments. */
export interface ElfImage {
  entry: bigint;
  segments: ElfSegment[];
}

/** Parses the header and PT_LOAD program headers; throws RangeError on anything else. */
export function parseElf(bytes: Uint8Array): ElfImage {
  if (!isElf(bytes) || bytes.length < ELF64_EHDR.size) throw new RangeError("not an ELF file");
  const h = decode(ELF64_EHDR, bytes);
  if (h.ei_class !== ELFCLASS64 || h.ei_data !== ELFDATA2LSB) throw new RangeError("not a little-endian ELF64 file");
  if (h.e_machine !== EM_X86_64) throw new RangeError(`ELF machine ${h.e_machine} is not x86-64 (62)`);
  const segments: ElfSegment[] = [];
  for (let i = 0; i < h.e_phnum; i++) {
    const off = Number(h.e_phoff) + i * h.e_phentsize;
    if (off + ELF64_PHDR.size > bytes.length) throw new RangeError(`program header ${i} runs past the file`);
    const p = decode(ELF64_PHDR, bytes, off);
    if (p.p_type !== PT_LOAD || p.p_memsz === 0n) continue;
    if (p.p_offset + p.p_filesz > BigInt(bytes.length)) throw new RangeError(`segment ${i} runs past the file`);
    if (p.p_filesz > p.p_memsz) {
      throw new RangeError(`segment ${i}: p_filesz ${hex(p.p_filesz)} > p_memsz ${hex(p.p_memsz)}`);
    }
    segments.push({ paddr: p.p_paddr, filesz: p.p_filesz, memsz: p.p_memsz, offset: p.p_offset, flags: p.p_flags });
  }
  if (!segments.length) throw new RangeError("ELF file has no PT_LOAD segment");
  return { entry: h.e_entry, segments };
}

/** Loads an ELF64 image and enters it in long mode. */
export function loadElf(
  vcpu: Vcpu,
  bytes: Uint8Array,
  o: LongModeLoadOptions = {},
): LoadInfo & { pageTables: PageTableInfo; segments: ElfSegment[] } {
  const elf = parseElf(bytes);
  let size = 0;
  for (const s of elf.segments) {
    const data = new Uint8Array(Number(s.memsz));
    data.set(bytes.subarray(Number(s.offset), Number(s.offset + s.filesz)));
    try {
      vcpu.vm.writeGuest(s.paddr, data);
    } catch (e) {
      throw new RangeError(`ELF segment at ${hex(s.paddr)}+${hex(s.memsz)}: ${(e as Error).message}`);
    }
    size += data.length;
  }
  const stack = o.stack ?? defaultStack(vcpu);
  const pageTables = setupLongMode(vcpu, { ...o, entry: elf.entry, stack });
  return {
    mode: "long",
    loadAddress: elf.segments[0].paddr,
    entry: elf.entry,
    stack,
    size,
    pageTables,
    segments: elf.segments,
  };
}
