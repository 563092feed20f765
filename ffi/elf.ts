/**
 * ELF constants (elf.h) kvmsh uses: the guest ELF loader (kvm/loaders/elf.ts) reads them, the
 * raw-syscall library's image (ffi/raw_syscall_lib.ts) is written with them. The layouts are in
 * ffi/structs.ts (ELF64_EHDR, ELF64_PHDR, ELF64_SHDR, ELF64_SYM, ELF64_DYN).
 * @module
 */

/** e_ident[EI_MAG0..3]: "\x7fELF". */
export const ELF_MAGIC: readonly number[] = Object.freeze([0x7f, 0x45, 0x4c, 0x46]);

/** The elf.h values kvmsh reads or writes. */
export const ELF = Object.freeze({
  ELFCLASS64: 2,
  ELFDATA2LSB: 1,
  EV_CURRENT: 1,
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
