/**
 * kvmsh's raw-syscall library: x86-64 functions that make a system call and return the
 * kernel's own answer (`-errno` on failure) in RAX, built as a minimal ELF shared object that
 * libc.ts writes to a memfd and opens with `Deno.dlopen` (a compiled call stub for its hot
 * function, like any library's).
 *
 * Why: glibc's wrappers report a failure as -1 and the error in the thread's `errno`, and kvmsh
 * can only read that errno in a later FFI call, after V8 has run code of its own. Measured here
 * (kvmsh 2026-12-07, Deno 2.9): a failing ioctl's errno read straight after the call was ENOENT
 * instead of the kernel's EINVAL/ENOTTY in ~8% of processes, a few milliseconds into a loop of
 * calls (never with `--v8-flags=--single-threaded` or `--max-opt=0`: V8's optimizing tiers are
 * involved), and never in the kernel's own return value, read through this library (0 of 100
 * processes). An error kvmsh shows is the kernel's answer only if it is taken from that value.
 *
 * - `kvmsh_syscall(nr, a, b, c, d, e, f)`: syscall `nr` with up to six arguments (the sixth on
 *   the stack, per the SysV ABI); unused ones may hold anything, the kernel ignores them.
 * - `kvmsh_ioctl(fd, request, arg)`: ioctl(2) (its arguments already sit where the kernel reads
 *   them): the hot path (KVM_RUN, KVM_CHECK_EXTENSION).
 * - `kvmsh_sigreturn`: the signal return trampoline (rt_sigreturn) that a handler installed with
 *   rt_sigaction must name as its SA_RESTORER (glibc's sigaction supplies its own; kvmsh's goes to
 *   the kernel directly), and `kvmsh_sigreturn_address()`, which returns its address.
 *
 * {@link RAW_ASM} is the source (AT&T syntax); {@link RAW_CODE} is what `as --64` makes of it
 * (tests/unit/raw_syscall_lib_test.ts reassembles it when `as` exists and loads the library).
 * @module
 */

import { SYS } from "./syscall_numbers.ts";
import { ELF, ELF_MAGIC } from "./elf.ts";
import { ELF64_DYN, ELF64_EHDR, ELF64_PHDR, ELF64_SHDR, ELF64_SYM } from "./structs.ts";
import { encode } from "./struct_codec.ts";
import { fromHex } from "./hex.ts";

/** The functions' names in the library, and their offsets in {@link RAW_CODE}. */
export const RAW_ENTRY = Object.freeze({
  kvmsh_syscall: 0,
  kvmsh_ioctl: 32,
  kvmsh_sigreturn: 48,
  kvmsh_sigreturn_address: 64,
});

/** The functions' source. */
export const RAW_ASM = `
	.text
kvmsh_syscall:
	mov %rdi, %rax
	mov %rsi, %rdi
	mov %rdx, %rsi
	mov %rcx, %rdx
	mov %r8, %r10
	mov %r9, %r8
	mov 8(%rsp), %r9
	syscall
	ret
	.balign 32
kvmsh_ioctl:
	mov $${SYS.ioctl}, %eax
	syscall
	ret
	.balign 16
kvmsh_sigreturn:
	mov $${SYS.rt_sigreturn}, %eax
	syscall
	.balign 16
kvmsh_sigreturn_address:
	lea kvmsh_sigreturn(%rip), %rax
	ret
`;

/** {@link RAW_ASM} assembled (nop padding as `as` emits it). */
export const RAW_CODE: Uint8Array<ArrayBuffer> = fromHex(
  "4889f84889f74889d64889ca4d89c24d89c84c8b4c24080f05c3660f1f440000b8100000000f05c30f1f840000000000" +
    "b80f0000000f05660f1f840000000000488d05e9ffffffc3",
);

/** The library's soname (DT_SONAME). */
export const RAW_SONAME = "libkvmsh_raw.so";

const PAGE = 0x1000;
const align = (n: number, a: number) => Math.ceil(n / a) * a;

/** A string table: each string's offset, and the bytes (NUL-terminated strings, the first ""). */
function stringTable(strs: readonly string[]): { off: number[]; bytes: Uint8Array } {
  const enc = new TextEncoder();
  const parts = strs.map((s) => enc.encode(s + "\0"));
  const off: number[] = [];
  let size = 0;
  for (const p of parts) {
    off.push(size);
    size += p.length;
  }
  const bytes = new Uint8Array(size);
  parts.forEach((p, i) => bytes.set(p, off[i]));
  return { off, bytes };
}

/**
 * The library as an ELF64 shared object: one read+execute segment (headers, the SysV hash table,
 * the dynamic symbols and strings, the code) and one read+write page for the dynamic section
 * (ld.so relocates its addresses in place), a PT_GNU_STACK that asks for no executable stack (a
 * library without one makes glibc's dlopen refuse or make every stack executable), and section
 * headers, which the loader ignores but binutils, gdb and perf read symbols through. Layouts and
 * constants are ffi/structs.ts's and ffi/elf.ts's.
 */
export function rawSyscallLibrary(): Uint8Array<ArrayBuffer> {
  const names = Object.keys(RAW_ENTRY) as (keyof typeof RAW_ENTRY)[];
  const dynstr = stringTable(["", ...names, RAW_SONAME]);
  const SECTIONS = ["", ".hash", ".dynsym", ".dynstr", ".text", ".dynamic", ".shstrtab"] as const;
  const shstr = stringTable(SECTIONS);
  const idx = (name: (typeof SECTIONS)[number]) => SECTIONS.indexOf(name);

  const nsyms = names.length + 1; // entry 0 is the null symbol
  const phnum = 4;
  const phoff = ELF64_EHDR.size;
  const hashOff = phoff + phnum * ELF64_PHDR.size;
  const hash = new Uint32Array([1, nsyms, nsyms - 1, ...Array.from({ length: nsyms }, (_, i) => Math.max(i - 1, 0))]);
  const symOff = align(hashOff + hash.byteLength, 8);
  const strOff = symOff + nsyms * ELF64_SYM.size;
  const textOff = align(strOff + dynstr.bytes.length, 32);
  const rxEnd = textOff + RAW_CODE.length;
  const dynOff = align(rxEnd, PAGE);
  const dyn: [number, number][] = [
    [ELF.DT_HASH, hashOff],
    [ELF.DT_STRTAB, strOff],
    [ELF.DT_SYMTAB, symOff],
    [ELF.DT_STRSZ, dynstr.bytes.length],
    [ELF.DT_SYMENT, ELF64_SYM.size],
    [ELF.DT_SONAME, dynstr.off[names.length + 1]],
    [ELF.DT_NULL, 0],
  ];
  const dynSize = dyn.length * ELF64_DYN.size;
  const shstrOff = dynOff + dynSize;
  const shoff = align(shstrOff + shstr.bytes.length, 8);
  const out = new Uint8Array(shoff + SECTIONS.length * ELF64_SHDR.size);

  encode(ELF64_EHDR, {
    ei_mag: ELF_MAGIC,
    ei_class: ELF.ELFCLASS64,
    ei_data: ELF.ELFDATA2LSB,
    ei_version: ELF.EV_CURRENT,
    e_type: ELF.ET_DYN,
    e_machine: ELF.EM_X86_64,
    e_version: ELF.EV_CURRENT,
    e_phoff: phoff,
    e_shoff: shoff,
    e_ehsize: ELF64_EHDR.size,
    e_phentsize: ELF64_PHDR.size,
    e_phnum: phnum,
    e_shentsize: ELF64_SHDR.size,
    e_shnum: SECTIONS.length,
    e_shstrndx: idx(".shstrtab"),
  }, out);

  const ph = (i: number, type: number, flags: number, off: number, size: number, al: number) =>
    encode(
      ELF64_PHDR,
      {
        p_type: type,
        p_flags: flags,
        p_offset: off,
        p_vaddr: off,
        p_paddr: off,
        p_filesz: size,
        p_memsz: size,
        p_align: al,
      },
      out,
      phoff + i * ELF64_PHDR.size,
    );
  ph(0, ELF.PT_LOAD, ELF.PF_R | ELF.PF_X, 0, rxEnd, PAGE);
  ph(1, ELF.PT_LOAD, ELF.PF_R | ELF.PF_W, dynOff, dynSize, PAGE);
  ph(2, ELF.PT_DYNAMIC, ELF.PF_R | ELF.PF_W, dynOff, dynSize, 8);
  ph(3, ELF.PT_GNU_STACK, ELF.PF_R | ELF.PF_W, 0, 0, 16);

  // SysV hash table with one bucket: the bucket holds the last symbol, each chain entry the one before.
  const hv = new DataView(out.buffer, hashOff, hash.byteLength);
  hash.forEach((x, i) => hv.setUint32(4 * i, x, true));

  const starts = names.map((n) => RAW_ENTRY[n]);
  names.forEach((name, k) => {
    const start = RAW_ENTRY[name];
    encode(
      ELF64_SYM,
      {
        st_name: dynstr.off[k + 1],
        st_info: (ELF.STB_GLOBAL << 4) | ELF.STT_FUNC,
        st_shndx: idx(".text"),
        st_value: textOff + start,
        st_size: Math.min(RAW_CODE.length, ...starts.filter((e) => e > start)) - start,
      },
      out,
      symOff + (k + 1) * ELF64_SYM.size,
    );
  });
  out.set(dynstr.bytes, strOff);
  out.set(RAW_CODE, textOff);
  dyn.forEach(([tag, val], k) => encode(ELF64_DYN, { d_tag: tag, d_un: val }, out, dynOff + k * ELF64_DYN.size));
  out.set(shstr.bytes, shstrOff);

  // Section headers (section 0 stays all zero).
  const sh = (
    name: (typeof SECTIONS)[number],
    type: number,
    flags: number,
    off: number,
    size: number,
    link: number,
    info: number,
    al: number,
    entsize: number,
  ) =>
    encode(
      ELF64_SHDR,
      {
        sh_name: shstr.off[idx(name)],
        sh_type: type,
        sh_flags: flags,
        sh_addr: flags & ELF.SHF_ALLOC ? off : 0,
        sh_offset: off,
        sh_size: size,
        sh_link: link,
        sh_info: info,
        sh_addralign: al,
        sh_entsize: entsize,
      },
      out,
      shoff + idx(name) * ELF64_SHDR.size,
    );
  const A = ELF.SHF_ALLOC;
  sh(".hash", ELF.SHT_HASH, A, hashOff, hash.byteLength, idx(".dynsym"), 0, 8, 4);
  sh(".dynsym", ELF.SHT_DYNSYM, A, symOff, nsyms * ELF64_SYM.size, idx(".dynstr"), 1, 8, ELF64_SYM.size);
  sh(".dynstr", ELF.SHT_STRTAB, A, strOff, dynstr.bytes.length, 0, 0, 1, 0);
  sh(".text", ELF.SHT_PROGBITS, A | ELF.SHF_EXECINSTR, textOff, RAW_CODE.length, 0, 0, 32, 0);
  sh(".dynamic", ELF.SHT_DYNAMIC, A | ELF.SHF_WRITE, dynOff, dynSize, idx(".dynstr"), 0, 8, ELF64_DYN.size);
  sh(".shstrtab", ELF.SHT_STRTAB, 0, shstrOff, shstr.bytes.length, 0, 0, 1, 0);
  return out;
}
