/**
 * Byte layouts of the kernel structs kvmsh passes (x86_64, Linux 7.2 uapi). Each offset is
 * written here once; unit tests pin sizes and offsets to the values of the kernel headers.
 * @module
 */

import { defineStruct } from "./struct_codec.ts";

/** `struct kvm_userspace_memory_region` (KVM_SET_USER_MEMORY_REGION). */
export const KVM_USERSPACE_MEMORY_REGION = defineStruct("kvm_userspace_memory_region", 32, {
  slot: { offset: 0, type: "u32" },
  flags: { offset: 4, type: "u32" },
  guest_phys_addr: { offset: 8, type: "u64" },
  memory_size: { offset: 16, type: "u64" },
  userspace_addr: { offset: 24, type: "u64" },
});

/** `struct kvm_userspace_memory_region2` (KVM_SET_USER_MEMORY_REGION2). */
export const KVM_USERSPACE_MEMORY_REGION2 = defineStruct("kvm_userspace_memory_region2", 160, {
  slot: { offset: 0, type: "u32" },
  flags: { offset: 4, type: "u32" },
  guest_phys_addr: { offset: 8, type: "u64" },
  memory_size: { offset: 16, type: "u64" },
  userspace_addr: { offset: 24, type: "u64" },
  guest_memfd_offset: { offset: 32, type: "u64" },
  guest_memfd: { offset: 40, type: "u32" },
  pad1: { offset: 44, type: "u32" },
  pad2: { offset: 48, type: "u64", count: 14 },
});

/** `struct kvm_create_guest_memfd` (KVM_CREATE_GUEST_MEMFD). */
export const KVM_CREATE_GUEST_MEMFD_ARGS = defineStruct("kvm_create_guest_memfd", 64, {
  size: { offset: 0, type: "u64" },
  flags: { offset: 8, type: "u64" },
  reserved: { offset: 16, type: "u64", count: 6 },
});

/** `struct kvm_memory_attributes` (KVM_SET_MEMORY_ATTRIBUTES). */
export const KVM_MEMORY_ATTRIBUTES_ARGS = defineStruct("kvm_memory_attributes", 32, {
  address: { offset: 0, type: "u64" },
  size: { offset: 8, type: "u64" },
  attributes: { offset: 16, type: "u64" },
  flags: { offset: 24, type: "u64" },
});

/** `struct kvm_enable_cap` (KVM_ENABLE_CAP). */
export const KVM_ENABLE_CAP_ARGS = defineStruct("kvm_enable_cap", 104, {
  cap: { offset: 0, type: "u32" },
  flags: { offset: 4, type: "u32" },
  args: { offset: 8, type: "u64", count: 4 },
  pad: { offset: 40, type: "u8", count: 64 },
});

/** `struct kvm_pre_fault_memory` (KVM_PRE_FAULT_MEMORY, a vCPU ioctl). */
export const KVM_PRE_FAULT_MEMORY_ARGS = defineStruct("kvm_pre_fault_memory", 64, {
  gpa: { offset: 0, type: "u64" },
  size: { offset: 8, type: "u64" },
  flags: { offset: 16, type: "u64" },
  padding: { offset: 24, type: "u64", count: 5 },
});

/** `struct kvm_dirty_log` (KVM_GET_DIRTY_LOG); dirty_bitmap is a user pointer. */
export const KVM_DIRTY_LOG = defineStruct("kvm_dirty_log", 16, {
  slot: { offset: 0, type: "u32" },
  padding1: { offset: 4, type: "u32" },
  dirty_bitmap: { offset: 8, type: "u64" },
});

/** `struct stat` as the x86_64 kernel and glibc lay it out. */
export const STAT = defineStruct("stat", 144, {
  st_dev: { offset: 0, type: "u64" },
  st_ino: { offset: 8, type: "u64" },
  st_nlink: { offset: 16, type: "u64" },
  st_mode: { offset: 24, type: "u32" },
  st_uid: { offset: 28, type: "u32" },
  st_gid: { offset: 32, type: "u32" },
  st_rdev: { offset: 40, type: "u64" },
  st_size: { offset: 48, type: "i64" },
  st_blksize: { offset: 56, type: "i64" },
  st_blocks: { offset: 64, type: "i64" },
});

/** `struct iovec` (process_vm_readv/writev). */
export const IOVEC = defineStruct("iovec", 16, {
  iov_base: { offset: 0, type: "u64" },
  iov_len: { offset: 8, type: "u64" },
});

/** `struct kvm_regs` (x86). */
export const KVM_REGS = defineStruct("kvm_regs", 144, {
  rax: { offset: 0, type: "u64" },
  rbx: { offset: 8, type: "u64" },
  rcx: { offset: 16, type: "u64" },
  rdx: { offset: 24, type: "u64" },
  rsi: { offset: 32, type: "u64" },
  rdi: { offset: 40, type: "u64" },
  rsp: { offset: 48, type: "u64" },
  rbp: { offset: 56, type: "u64" },
  r8: { offset: 64, type: "u64" },
  r9: { offset: 72, type: "u64" },
  r10: { offset: 80, type: "u64" },
  r11: { offset: 88, type: "u64" },
  r12: { offset: 96, type: "u64" },
  r13: { offset: 104, type: "u64" },
  r14: { offset: 112, type: "u64" },
  r15: { offset: 120, type: "u64" },
  rip: { offset: 128, type: "u64" },
  rflags: { offset: 136, type: "u64" },
});

/** `struct kvm_segment` (x86), 24 bytes; embedded in kvm_sregs. */
export const KVM_SEGMENT = defineStruct("kvm_segment", 24, {
  base: { offset: 0, type: "u64" },
  limit: { offset: 8, type: "u32" },
  selector: { offset: 12, type: "u16" },
  type: { offset: 14, type: "u8" },
  present: { offset: 15, type: "u8" },
  dpl: { offset: 16, type: "u8" },
  db: { offset: 17, type: "u8" },
  s: { offset: 18, type: "u8" },
  l: { offset: 19, type: "u8" },
  g: { offset: 20, type: "u8" },
  avl: { offset: 21, type: "u8" },
  unusable: { offset: 22, type: "u8" },
});

/** `struct kvm_dtable` (x86), 16 bytes; embedded in kvm_sregs. */
export const KVM_DTABLE = defineStruct("kvm_dtable", 16, {
  base: { offset: 0, type: "u64" },
  limit: { offset: 8, type: "u16" },
});

/** Where each segment and descriptor table sits inside `struct kvm_sregs`. */
export const KVM_SREGS_SEGMENTS = Object.freeze({
  cs: 0,
  ds: 24,
  es: 48,
  fs: 72,
  gs: 96,
  ss: 120,
  tr: 144,
  ldt: 168,
});
/** Offsets of gdt and idt (kvm_dtable) inside `struct kvm_sregs`. */
export const KVM_SREGS_DTABLES = Object.freeze({ gdt: 192, idt: 208 });

/** `struct kvm_sregs` (x86) scalar fields; segments and tables are at the offsets above. */
export const KVM_SREGS = defineStruct("kvm_sregs", 312, {
  cr0: { offset: 224, type: "u64" },
  cr2: { offset: 232, type: "u64" },
  cr3: { offset: 240, type: "u64" },
  cr4: { offset: 248, type: "u64" },
  cr8: { offset: 256, type: "u64" },
  efer: { offset: 264, type: "u64" },
  apic_base: { offset: 272, type: "u64" },
  interrupt_bitmap: { offset: 280, type: "u64", count: 4 },
});

/** `struct kvm_fpu` (x86). */
export const KVM_FPU = defineStruct("kvm_fpu", 416, {
  fpr: { offset: 0, type: "u8", count: 128 },
  fcw: { offset: 128, type: "u16" },
  fsw: { offset: 130, type: "u16" },
  ftwx: { offset: 132, type: "u8" },
  last_opcode: { offset: 134, type: "u16" },
  last_ip: { offset: 136, type: "u64" },
  last_dp: { offset: 144, type: "u64" },
  xmm: { offset: 152, type: "u8", count: 256 },
  mxcsr: { offset: 408, type: "u32" },
});

/** `struct kvm_cpuid2` header; `struct kvm_cpuid_entry2` entries follow at offset 8. */
export const KVM_CPUID2 = defineStruct("kvm_cpuid2", 8, {
  nent: { offset: 0, type: "u32" },
  padding: { offset: 4, type: "u32" },
});

/** `struct kvm_cpuid_entry2` (x86). */
export const KVM_CPUID_ENTRY2 = defineStruct("kvm_cpuid_entry2", 40, {
  function: { offset: 0, type: "u32" },
  index: { offset: 4, type: "u32" },
  flags: { offset: 8, type: "u32" },
  eax: { offset: 12, type: "u32" },
  ebx: { offset: 16, type: "u32" },
  ecx: { offset: 20, type: "u32" },
  edx: { offset: 24, type: "u32" },
});

/** `struct kvm_msrs` header; `struct kvm_msr_entry` entries follow at offset 8. */
export const KVM_MSRS = defineStruct("kvm_msrs", 8, {
  nmsrs: { offset: 0, type: "u32" },
  pad: { offset: 4, type: "u32" },
});

/** `struct kvm_msr_list` header (KVM_GET_MSR_INDEX_LIST); u32 indices follow at offset 4. */
export const KVM_MSR_LIST = defineStruct("kvm_msr_list", 4, {
  nmsrs: { offset: 0, type: "u32" },
});

/** `struct kvm_msr_entry` (x86). */
export const KVM_MSR_ENTRY = defineStruct("kvm_msr_entry", 16, {
  index: { offset: 0, type: "u32" },
  reserved: { offset: 4, type: "u32" },
  data: { offset: 8, type: "u64" },
});

/** `struct kvm_mp_state`. */
export const KVM_MP_STATE_ARGS = defineStruct("kvm_mp_state", 4, {
  mp_state: { offset: 0, type: "u32" },
});

/** `struct kvm_guest_debug` (x86: arch is debugreg[8]). */
export const KVM_GUEST_DEBUG = defineStruct("kvm_guest_debug", 72, {
  control: { offset: 0, type: "u32" },
  pad: { offset: 4, type: "u32" },
  debugreg: { offset: 8, type: "u64", count: 8 },
});

/** `struct kvm_translation` (KVM_TRANSLATE). */
export const KVM_TRANSLATION = defineStruct("kvm_translation", 24, {
  linear_address: { offset: 0, type: "u64" },
  physical_address: { offset: 8, type: "u64" },
  valid: { offset: 16, type: "u8" },
  writeable: { offset: 17, type: "u8" },
  usermode: { offset: 18, type: "u8" },
});

/**
 * `struct kvm_run`, the page mmapped from a vCPU fd. The exit union starts at 32; each exit's
 * fields are listed with their absolute offsets so the exit loop reads them in place.
 */
export const KVM_RUN_LAYOUT = defineStruct("kvm_run", 2352, {
  request_interrupt_window: { offset: 0, type: "u8" },
  immediate_exit: { offset: 1, type: "u8" },
  exit_reason: { offset: 8, type: "u32" },
  ready_for_interrupt_injection: { offset: 12, type: "u8" },
  if_flag: { offset: 13, type: "u8" },
  flags: { offset: 14, type: "u16" },
  cr8: { offset: 16, type: "u64" },
  apic_base: { offset: 24, type: "u64" },
  // KVM_EXIT_UNKNOWN / FAIL_ENTRY
  hardware_reason: { offset: 32, type: "u64" },
  fail_entry_cpu: { offset: 40, type: "u32" },
  // KVM_EXIT_EXCEPTION
  ex_exception: { offset: 32, type: "u32" },
  ex_error_code: { offset: 36, type: "u32" },
  // KVM_EXIT_IO
  io_direction: { offset: 32, type: "u8" },
  io_size: { offset: 33, type: "u8" },
  io_port: { offset: 34, type: "u16" },
  io_count: { offset: 36, type: "u32" },
  io_data_offset: { offset: 40, type: "u64" },
  // KVM_EXIT_DEBUG (x86 kvm_debug_exit_arch)
  debug_exception: { offset: 32, type: "u32" },
  debug_pc: { offset: 40, type: "u64" },
  debug_dr6: { offset: 48, type: "u64" },
  debug_dr7: { offset: 56, type: "u64" },
  // KVM_EXIT_MMIO
  mmio_phys_addr: { offset: 32, type: "u64" },
  mmio_data: { offset: 40, type: "u8", count: 8 },
  mmio_len: { offset: 48, type: "u32" },
  mmio_is_write: { offset: 52, type: "u8" },
  // KVM_EXIT_HYPERCALL
  hypercall_nr: { offset: 32, type: "u64" },
  hypercall_args: { offset: 40, type: "u64", count: 6 },
  hypercall_ret: { offset: 88, type: "u64" },
  hypercall_flags: { offset: 96, type: "u64" },
  // KVM_EXIT_INTERNAL_ERROR
  internal_suberror: { offset: 32, type: "u32" },
  internal_ndata: { offset: 36, type: "u32" },
  internal_data: { offset: 40, type: "u64", count: 16 },
  // KVM_EXIT_SYSTEM_EVENT
  system_event_type: { offset: 32, type: "u32" },
  system_event_ndata: { offset: 36, type: "u32" },
  system_event_data: { offset: 40, type: "u64", count: 16 },
  // KVM_EXIT_MEMORY_FAULT
  memory_fault_flags: { offset: 32, type: "u64" },
  memory_fault_gpa: { offset: 40, type: "u64" },
  memory_fault_size: { offset: 48, type: "u64" },
  kvm_valid_regs: { offset: 288, type: "u64" },
  kvm_dirty_regs: { offset: 296, type: "u64" },
});

/**
 * kvmsh's ucall block (guest ABI, not a kernel struct): the guest writes one in its memory and
 * does `out` to the ucall port with the block's guest address in RDI (selftests-style ucall).
 * cmd: 1 print, 2 sync, 3 assert, 4 done. msg_gpa/msg_len name a string in guest memory.
 */
export const GUEST_UCALL = defineStruct("kvmsh_ucall", 64, {
  cmd: { offset: 0, type: "u64" },
  args: { offset: 8, type: "u64", count: 4 },
  msg_gpa: { offset: 40, type: "u64" },
  msg_len: { offset: 48, type: "u64" },
  reserved: { offset: 56, type: "u64" },
});

/** `Elf64_Ehdr` (elf.h), e_ident's bytes as kvmsh reads and writes them. */
export const ELF64_EHDR = defineStruct("Elf64_Ehdr", 64, {
  ei_mag: { offset: 0, type: "u8", count: 4 },
  ei_class: { offset: 4, type: "u8" },
  ei_data: { offset: 5, type: "u8" },
  ei_version: { offset: 6, type: "u8" },
  e_type: { offset: 16, type: "u16" },
  e_machine: { offset: 18, type: "u16" },
  e_version: { offset: 20, type: "u32" },
  e_entry: { offset: 24, type: "u64" },
  e_phoff: { offset: 32, type: "u64" },
  e_shoff: { offset: 40, type: "u64" },
  e_flags: { offset: 48, type: "u32" },
  e_ehsize: { offset: 52, type: "u16" },
  e_phentsize: { offset: 54, type: "u16" },
  e_phnum: { offset: 56, type: "u16" },
  e_shentsize: { offset: 58, type: "u16" },
  e_shnum: { offset: 60, type: "u16" },
  e_shstrndx: { offset: 62, type: "u16" },
});

/** `Elf64_Phdr` (elf.h). */
export const ELF64_PHDR = defineStruct("Elf64_Phdr", 56, {
  p_type: { offset: 0, type: "u32" },
  p_flags: { offset: 4, type: "u32" },
  p_offset: { offset: 8, type: "u64" },
  p_vaddr: { offset: 16, type: "u64" },
  p_paddr: { offset: 24, type: "u64" },
  p_filesz: { offset: 32, type: "u64" },
  p_memsz: { offset: 40, type: "u64" },
  p_align: { offset: 48, type: "u64" },
});

/** `Elf64_Shdr` (elf.h). */
export const ELF64_SHDR = defineStruct("Elf64_Shdr", 64, {
  sh_name: { offset: 0, type: "u32" },
  sh_type: { offset: 4, type: "u32" },
  sh_flags: { offset: 8, type: "u64" },
  sh_addr: { offset: 16, type: "u64" },
  sh_offset: { offset: 24, type: "u64" },
  sh_size: { offset: 32, type: "u64" },
  sh_link: { offset: 40, type: "u32" },
  sh_info: { offset: 44, type: "u32" },
  sh_addralign: { offset: 48, type: "u64" },
  sh_entsize: { offset: 56, type: "u64" },
});

/** `Elf64_Sym` (elf.h). */
export const ELF64_SYM = defineStruct("Elf64_Sym", 24, {
  st_name: { offset: 0, type: "u32" },
  st_info: { offset: 4, type: "u8" },
  st_other: { offset: 5, type: "u8" },
  st_shndx: { offset: 6, type: "u16" },
  st_value: { offset: 8, type: "u64" },
  st_size: { offset: 16, type: "u64" },
});

/** `Elf64_Dyn` (elf.h; d_un as d_val/d_ptr). */
export const ELF64_DYN = defineStruct("Elf64_Dyn", 16, {
  d_tag: { offset: 0, type: "i64" },
  d_un: { offset: 8, type: "u64" },
});

/**
 * The kernel's `struct sigaction` (x86_64 `<asm/signal.h>`; what rt_sigaction(2) takes with a
 * sigsetsize of 8), not glibc's: kvmsh calls the syscall itself (libc.ts's sigaction adds
 * SA_RESTORER, as glibc's does).
 */
export const SIGACTION = defineStruct("sigaction", 32, {
  sa_handler: { offset: 0, type: "u64" },
  sa_flags: { offset: 8, type: "u64" },
  sa_restorer: { offset: 16, type: "u64" },
  sa_mask: { offset: 24, type: "u64" },
});

/** `struct sigevent` (timer_create); `sigev_notify_thread_id` is glibc's `_sigev_un._tid`. */
export const SIGEVENT = defineStruct("sigevent", 64, {
  sigev_value: { offset: 0, type: "u64" },
  sigev_signo: { offset: 8, type: "i32" },
  sigev_notify: { offset: 12, type: "i32" },
  sigev_notify_thread_id: { offset: 16, type: "i32" },
});

/** `struct itimerspec` (timer_settime): two `struct timespec` {tv_sec, tv_nsec}. */
export const ITIMERSPEC = defineStruct("itimerspec", 32, {
  interval_sec: { offset: 0, type: "i64" },
  interval_nsec: { offset: 8, type: "i64" },
  value_sec: { offset: 16, type: "i64" },
  value_nsec: { offset: 24, type: "i64" },
});
