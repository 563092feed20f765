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
export const RAW_CODE: Uint8Array<ArrayBuffer> = Uint8Array.from(
  ("4889f84889f74889d64889ca4d89c24d89c84c8b4c24080f05c3660f1f440000b8100000000f05c30f1f840000000000" +
    "b80f0000000f05660f1f840000000000488d05e9ffffffc3").match(/../g)!,
  (b) => parseInt(b, 16),
);

/** The library's soname (DT_SONAME). */
export const RAW_SONAME = "libkvmsh_raw.so";

// ELF64 constants (the System V gABI and its x86-64 supplement).
const ELF = Object.freeze({
  EHDR: 64,
  PHDR: 56,
  SHDR: 64,
  SYM: 24,
  DYN: 16,
  ET_DYN: 3,
  EM_X86_64: 62,
  PT_LOAD: 1,
  PT_DYNAMIC: 2,
  PT_GNU_STACK: 0x6474e551,
  PF_X: 1,
  PF_W: 2,
  PF_R: 4,
  SHT_PROGBITS: 1,
  SHT_STRTAB: 3,
  SHT_HASH: 5,
  SHT_DYNAMIC: 6,
  SHT_DYNSYM: 11,
  SHF_WRITE: 1,
  SHF_ALLOC: 2,
  SHF_EXECINSTR: 4,
  STB_GLOBAL: 1,
  STT_FUNC: 2,
  DT_NULL: 0,
  DT_HASH: 4,
  DT_STRTAB: 5,
  DT_SYMTAB: 6,
  DT_STRSZ: 10,
  DT_SYMENT: 11,
  DT_SONAME: 14,
});

const PAGE = 0x1000;
const align = (n: number, a: number) => Math.ceil(n / a) * a;

/**
 * The library as an ELF64 shared object: one read+execute segment (headers, the SysV hash table,
 * the dynamic symbols and strings, the code) and one read+write page for the dynamic section
 * (ld.so relocates its addresses in place), a PT_GNU_STACK that asks for no executable stack (a
 * library without one makes glibc's dlopen refuse or make every stack executable), and section
 * headers, which the loader ignores but binutils, gdb and perf read symbols through.
 */
export function rawSyscallLibrary(): Uint8Array<ArrayBuffer> {
  const names = Object.keys(RAW_ENTRY) as (keyof typeof RAW_ENTRY)[];
  const table = (strs: string[]) => {
    const off: number[] = [];
    let size = 0;
    for (const s of strs) {
      off.push(size);
      size += s.length + 1;
    }
    return { strs, off, size };
  };
  const dynstr = table(["", ...names, RAW_SONAME]);
  const SECTIONS = ["", ".hash", ".dynsym", ".dynstr", ".text", ".dynamic", ".shstrtab"] as const;
  const shstr = table([...SECTIONS]);
  const idx = (name: (typeof SECTIONS)[number]) => SECTIONS.indexOf(name);

  const nsyms = names.length + 1;
  const phnum = 4;
  const phoff = ELF.EHDR;
  const hashOff = phoff + phnum * ELF.PHDR;
  const hashSize = 4 * (2 + 1 + nsyms); // nbucket, nchain, one bucket, a chain entry per symbol
  const symOff = align(hashOff + hashSize, 8);
  const strOff = symOff + nsyms * ELF.SYM;
  const textOff = align(strOff + dynstr.size, 32);
  const rxEnd = textOff + RAW_CODE.length;
  const dynOff = align(rxEnd, PAGE);
  const dyn: [number, number][] = [
    [ELF.DT_HASH, hashOff],
    [ELF.DT_STRTAB, strOff],
    [ELF.DT_SYMTAB, symOff],
    [ELF.DT_STRSZ, dynstr.size],
    [ELF.DT_SYMENT, ELF.SYM],
    [ELF.DT_SONAME, dynstr.off[dynstr.strs.length - 1]],
    [ELF.DT_NULL, 0],
  ];
  const dynSize = dyn.length * ELF.DYN;
  const shstrOff = dynOff + dynSize;
  const shoff = align(shstrOff + shstr.size, 8);
  const out = new Uint8Array(shoff + SECTIONS.length * ELF.SHDR);
  const v = new DataView(out.buffer);
  const u16 = (o: number, x: number) => v.setUint16(o, x, true);
  const u32 = (o: number, x: number) => v.setUint32(o, x, true);
  const u64 = (o: number, x: number) => v.setBigUint64(o, BigInt(x), true);
  const enc = new TextEncoder();

  // ELF header: 64-bit, little-endian, version 1, System V ABI.
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]);
  u16(16, ELF.ET_DYN);
  u16(18, ELF.EM_X86_64);
  u32(20, 1);
  u64(24, 0); // no entry point
  u64(32, phoff);
  u64(40, shoff);
  u32(48, 0);
  u16(52, ELF.EHDR);
  u16(54, ELF.PHDR);
  u16(56, phnum);
  u16(58, ELF.SHDR);
  u16(60, SECTIONS.length);
  u16(62, idx(".shstrtab"));

  // Program headers: p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align.
  const ph = (i: number, type: number, flags: number, off: number, size: number, al: number) => {
    const o = phoff + i * ELF.PHDR;
    u32(o, type);
    u32(o + 4, flags);
    u64(o + 8, off);
    u64(o + 16, off);
    u64(o + 24, off);
    u64(o + 32, size);
    u64(o + 40, size);
    u64(o + 48, al);
  };
  ph(0, ELF.PT_LOAD, ELF.PF_R | ELF.PF_X, 0, rxEnd, PAGE);
  ph(1, ELF.PT_LOAD, ELF.PF_R | ELF.PF_W, dynOff, dynSize, PAGE);
  ph(2, ELF.PT_DYNAMIC, ELF.PF_R | ELF.PF_W, dynOff, dynSize, 8);
  ph(3, ELF.PT_GNU_STACK, ELF.PF_R | ELF.PF_W, 0, 0, 16);

  // SysV hash table with one bucket: the bucket holds the last symbol, each chain entry the one before.
  u32(hashOff, 1);
  u32(hashOff + 4, nsyms);
  u32(hashOff + 8, nsyms - 1);
  for (let i = 1; i < nsyms; i++) u32(hashOff + 12 + 4 * i, i - 1);

  // Symbols (entry 0 is the null symbol): st_name, st_info, st_other, st_shndx, st_value, st_size.
  const starts = names.map((n) => RAW_ENTRY[n]);
  names.forEach((name, k) => {
    const o = symOff + (k + 1) * ELF.SYM;
    const start = RAW_ENTRY[name];
    const end = Math.min(RAW_CODE.length, ...starts.filter((e) => e > start));
    u32(o, dynstr.off[k + 1]);
    out[o + 4] = (ELF.STB_GLOBAL << 4) | ELF.STT_FUNC;
    u16(o + 6, idx(".text"));
    u64(o + 8, textOff + start);
    u64(o + 16, end - start);
  });
  dynstr.strs.forEach((s, k) => out.set(enc.encode(s), strOff + dynstr.off[k]));
  out.set(RAW_CODE, textOff);
  dyn.forEach(([tag, val], k) => {
    u64(dynOff + k * ELF.DYN, tag);
    u64(dynOff + k * ELF.DYN + 8, val);
  });
  shstr.strs.forEach((s, k) => out.set(enc.encode(s), shstrOff + shstr.off[k]));

  // Section headers: sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size, sh_link, sh_info,
  // sh_addralign, sh_entsize (section 0 stays all zero).
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
  ) => {
    const o = shoff + idx(name) * ELF.SHDR;
    u32(o, shstr.off[idx(name)]);
    u32(o + 4, type);
    u64(o + 8, flags);
    u64(o + 16, flags & ELF.SHF_ALLOC ? off : 0);
    u64(o + 24, off);
    u64(o + 32, size);
    u32(o + 40, link);
    u32(o + 44, info);
    u64(o + 48, al);
    u64(o + 56, entsize);
  };
  const A = ELF.SHF_ALLOC;
  sh(".hash", ELF.SHT_HASH, A, hashOff, hashSize, idx(".dynsym"), 0, 8, 4);
  sh(".dynsym", ELF.SHT_DYNSYM, A, symOff, nsyms * ELF.SYM, idx(".dynstr"), 1, 8, ELF.SYM);
  sh(".dynstr", ELF.SHT_STRTAB, A, strOff, dynstr.size, 0, 0, 1, 0);
  sh(".text", ELF.SHT_PROGBITS, A | ELF.SHF_EXECINSTR, textOff, RAW_CODE.length, 0, 0, 32, 0);
  sh(".dynamic", ELF.SHT_DYNAMIC, A | ELF.SHF_WRITE, dynOff, dynSize, idx(".dynstr"), 0, 8, ELF.DYN);
  sh(".shstrtab", ELF.SHT_STRTAB, 0, shstrOff, shstr.size, 0, 0, 1, 0);
  return out;
}
