/**
 * Pins every ioctl number and struct layout to the values the Linux 7.2 uapi headers give
 * (printed by a C program compiled against them: _IO*, sizeof, offsetof).
 */

import { deepStrictEqual as eq } from "node:assert/strict";
import { IOCTL, ioctlName } from "../../ffi/uapi.ts";
import * as S from "../../ffi/structs.ts";
import { decodeIoc } from "../../ffi/ioctl_encoding.ts";

const HEADER_IOCTLS: Record<string, number> = {
  KVM_GET_API_VERSION: 0xae00,
  KVM_CREATE_VM: 0xae01,
  KVM_GET_MSR_INDEX_LIST: 0xc004ae02,
  KVM_CHECK_EXTENSION: 0xae03,
  KVM_GET_VCPU_MMAP_SIZE: 0xae04,
  KVM_GET_SUPPORTED_CPUID: 0xc008ae05,
  KVM_CREATE_VCPU: 0xae41,
  KVM_GET_DIRTY_LOG: 0x4010ae42,
  KVM_SET_USER_MEMORY_REGION: 0x4020ae46,
  KVM_SET_TSS_ADDR: 0xae47,
  KVM_SET_IDENTITY_MAP_ADDR: 0x4008ae48,
  KVM_SET_USER_MEMORY_REGION2: 0x40a0ae49,
  KVM_CREATE_IRQCHIP: 0xae60,
  KVM_ENABLE_CAP: 0x4068aea3,
  KVM_SET_MEMORY_ATTRIBUTES: 0x4020aed2,
  KVM_CREATE_GUEST_MEMFD: 0xc040aed4,
  KVM_RUN: 0xae80,
  KVM_GET_REGS: 0x8090ae81,
  KVM_SET_REGS: 0x4090ae82,
  KVM_GET_SREGS: 0x8138ae83,
  KVM_SET_SREGS: 0x4138ae84,
  KVM_TRANSLATE: 0xc018ae85,
  KVM_GET_MSRS: 0xc008ae88,
  KVM_SET_MSRS: 0x4008ae89,
  KVM_GET_FPU: 0x81a0ae8c,
  KVM_SET_FPU: 0x41a0ae8d,
  KVM_SET_CPUID2: 0x4008ae90,
  KVM_GET_CPUID2: 0xc008ae91,
  KVM_GET_MP_STATE: 0x8004ae98,
  KVM_SET_MP_STATE: 0x4004ae99,
  KVM_SET_GUEST_DEBUG: 0x4048ae9b,
  KVM_PRE_FAULT_MEMORY: 0xc040aed5,
};

Deno.test("every ioctl number matches the kernel headers", () => {
  for (const [name, value] of Object.entries(HEADER_IOCTLS)) {
    eq((IOCTL as Record<string, number>)[name], value, name);
  }
  eq(Object.keys(IOCTL).sort(), Object.keys(HEADER_IOCTLS).sort());
});

Deno.test("KVM_CREATE_GUEST_MEMFD is 0xc040aed4 and decodes back to its fields", () => {
  eq(IOCTL.KVM_CREATE_GUEST_MEMFD, 0xc040aed4);
  eq(decodeIoc(IOCTL.KVM_CREATE_GUEST_MEMFD), { dir: 3, type: 0xae, nr: 0xd4, size: 64 });
  eq(ioctlName(0xc040aed4), "KVM_CREATE_GUEST_MEMFD");
  eq(ioctlName(0x1234), "ioctl 0x1234");
});

Deno.test("struct sizes match the kernel headers", () => {
  eq(S.KVM_USERSPACE_MEMORY_REGION2.size, 160, "sizeof kvm_userspace_memory_region2");
  eq(S.KVM_CREATE_GUEST_MEMFD_ARGS.size, 64, "sizeof kvm_create_guest_memfd");
  eq(S.KVM_MEMORY_ATTRIBUTES_ARGS.size, 32, "sizeof kvm_memory_attributes");
  eq(S.KVM_ENABLE_CAP_ARGS.size, 104, "sizeof kvm_enable_cap");
  eq(S.STAT.size, 144, "sizeof stat");
  eq(S.KVM_REGS.size, 144, "sizeof kvm_regs");
  eq(S.KVM_SREGS.size, 312, "sizeof kvm_sregs");
  eq(S.KVM_FPU.size, 416, "sizeof kvm_fpu");
  eq(S.KVM_RUN_LAYOUT.size, 2352, "sizeof kvm_run");
  eq(S.KVM_GUEST_DEBUG.size, 72, "sizeof kvm_guest_debug");
  eq(S.KVM_CPUID_ENTRY2.size, 40, "sizeof kvm_cpuid_entry2");
});

Deno.test("signal and timer structs match the headers (x86_64): the kernel's sigaction, glibc 2.36's sigevent", () => {
  // Printed by a C program compiled against /usr/include (sizeof, offsetof; _sigev_un._tid).
  // struct sigaction as rt_sigaction takes it: from <asm/signal.h> alone (glibc's <signal.h> has its own, 152 bytes).
  eq(S.SIGACTION.size, 32, "sizeof struct sigaction (asm/signal.h)");
  eq(S.SIGACTION.fields.sa_handler.offset, 0, "offsetof(sigaction, sa_handler)");
  eq(S.SIGACTION.fields.sa_flags.offset, 8, "offsetof(sigaction, sa_flags)");
  eq(S.SIGACTION.fields.sa_restorer.offset, 16, "offsetof(sigaction, sa_restorer)");
  eq(S.SIGACTION.fields.sa_mask.offset, 24, "offsetof(sigaction, sa_mask)");
  eq(S.SIGEVENT.size, 64, "sizeof struct sigevent");
  eq(S.SIGEVENT.fields.sigev_value.offset, 0, "offsetof(sigevent, sigev_value)");
  eq(S.SIGEVENT.fields.sigev_signo.offset, 8, "offsetof(sigevent, sigev_signo)");
  eq(S.SIGEVENT.fields.sigev_notify.offset, 12, "offsetof(sigevent, sigev_notify)");
  eq(S.SIGEVENT.fields.sigev_notify_thread_id.offset, 16, "offsetof(sigevent, _sigev_un._tid)");
  eq(S.ITIMERSPEC.size, 32, "sizeof struct itimerspec");
  eq(S.ITIMERSPEC.fields.interval_sec.offset, 0, "offsetof(itimerspec, it_interval)");
  eq(S.ITIMERSPEC.fields.interval_nsec.offset, 8, "offsetof(itimerspec, it_interval.tv_nsec)");
  eq(S.ITIMERSPEC.fields.value_sec.offset, 16, "offsetof(itimerspec, it_value)");
  eq(S.ITIMERSPEC.fields.value_nsec.offset, 24, "offsetof(itimerspec, it_value.tv_nsec)");
});

Deno.test("struct field offsets match the kernel headers", () => {
  const R = S.KVM_RUN_LAYOUT.fields;
  eq(
    S.KVM_USERSPACE_MEMORY_REGION2.fields.guest_memfd_offset.offset,
    32,
    "offsetof(kvm_userspace_memory_region2, guest_memfd_offset)",
  );
  eq(
    S.KVM_USERSPACE_MEMORY_REGION2.fields.guest_memfd.offset,
    40,
    "offsetof(kvm_userspace_memory_region2, guest_memfd)",
  );
  eq(S.KVM_USERSPACE_MEMORY_REGION2.fields.pad2.offset, 48, "offsetof(kvm_userspace_memory_region2, pad2)");
  eq(S.STAT.fields.st_size.offset, 48, "offsetof(stat, st_size)");
  eq(S.STAT.fields.st_blksize.offset, 56, "offsetof(stat, st_blksize)");
  eq(S.STAT.fields.st_mode.offset, 24, "offsetof(stat, st_mode)");
  eq(S.STAT.fields.st_ino.offset, 8, "offsetof(stat, st_ino)");
  eq(S.KVM_SREGS.fields.cr0.offset, 224, "offsetof(kvm_sregs, cr0)");
  eq(S.KVM_SREGS.fields.efer.offset, 264, "offsetof(kvm_sregs, efer)");
  eq({ offset: S.KVM_SREGS_DTABLES.gdt }.offset, 192, "offsetof(kvm_sregs, gdt)");
  eq(S.KVM_SREGS.fields.interrupt_bitmap.offset, 280, "offsetof(kvm_sregs, interrupt_bitmap)");
  eq(S.KVM_FPU.fields.mxcsr.offset, 408, "offsetof(kvm_fpu, mxcsr)");
  eq(S.KVM_FPU.fields.xmm.offset, 152, "offsetof(kvm_fpu, xmm)");
  eq(R.exit_reason.offset, 8, "offsetof(kvm_run, exit_reason)");
  eq(R.io_port.offset, 34, "offsetof(kvm_run, io.port)");
  eq(R.io_data_offset.offset, 40, "offsetof(kvm_run, io.data_offset)");
  eq(R.mmio_len.offset, 48, "offsetof(kvm_run, mmio.len)");
  eq(R.mmio_is_write.offset, 52, "offsetof(kvm_run, mmio.is_write)");
  eq(R.hypercall_ret.offset, 88, "offsetof(kvm_run, hypercall.ret)");
  eq(R.hypercall_flags.offset, 96, "offsetof(kvm_run, hypercall.flags)");
  eq(R.internal_data.offset, 40, "offsetof(kvm_run, internal.data)");
  eq(R.system_event_data.offset, 40, "offsetof(kvm_run, system_event.data)");
  eq(R.memory_fault_gpa.offset, 40, "offsetof(kvm_run, memory_fault.gpa)");
  eq(R.memory_fault_size.offset, 48, "offsetof(kvm_run, memory_fault.size)");
  eq(R.kvm_valid_regs.offset, 288, "offsetof(kvm_run, kvm_valid_regs)");
  eq(R.immediate_exit.offset, 1, "offsetof(kvm_run, immediate_exit)");
  eq(R.fail_entry_cpu.offset, 40, "offsetof(kvm_run, fail_entry.cpu)");
  eq(R.debug_pc.offset, 40, "offsetof(kvm_run, debug.arch.pc)");
  eq(R.debug_dr7.offset, 56, "offsetof(kvm_run, debug.arch.dr7)");
});

Deno.test("flag bits and constants match the kernel headers", async () => {
  const { FALLOC, GUEST_MEMFD_FLAGS, MEMORY_ATTRIBUTES, MEMSLOT_FLAGS } = await import("../../ffi/uapi.ts");
  const { MADV } = await import("../../ffi/libc.ts");
  eq(GUEST_MEMFD_FLAGS.bits, { mmap: 1n, "init-shared": 2n }); // GUEST_MEMFD_FLAG_MMAP, _INIT_SHARED
  eq(MEMSLOT_FLAGS.bits, { "log-dirty": 1n, readonly: 2n, "guest-memfd": 4n }); // KVM_MEM_*
  eq(MEMORY_ATTRIBUTES.bits.private, 8n); // KVM_MEMORY_ATTRIBUTE_PRIVATE = 1 << 3
  eq([FALLOC.KEEP_SIZE, FALLOC.PUNCH_HOLE], [1, 2]); // linux/falloc.h
  eq([MADV.DONTNEED, MADV.HUGEPAGE, MADV.NOHUGEPAGE, MADV.COLLAPSE], [4, 14, 15, 25]); // asm-generic/mman-common.h
});

Deno.test("vCPU exit ABI: kvm_run union offsets, hypercall and memory-fault constants, ELF64 headers", async () => {
  const U = await import("../../ffi/uapi.ts");
  const { KVM_HC_MAP_GPA_RANGE } = await import("../../ffi/caps.ts");
  const R = S.KVM_RUN_LAYOUT.fields;
  // offsetof(struct kvm_run, …) from linux/kvm.h (Linux 7.2)
  eq([R.io_direction.offset, R.io_size.offset, R.io_count.offset], [32, 33, 36]);
  eq([R.mmio_phys_addr.offset, R.mmio_data.offset], [32, 40]);
  eq([R.hypercall_nr.offset, R.hypercall_args.offset], [32, 40]);
  eq([R.internal_suberror.offset, R.internal_ndata.offset], [32, 36]);
  eq([R.system_event_type.offset, R.system_event_ndata.offset], [32, 36]);
  eq([R.memory_fault_flags.offset, R.hardware_reason.offset], [32, 32]);
  eq([R.debug_exception.offset, R.debug_dr6.offset, R.ex_exception.offset, R.ex_error_code.offset], [32, 48, 32, 36]);
  eq(KVM_HC_MAP_GPA_RANGE, 12); // linux/kvm_para.h
  eq(U.MAP_GPA_RANGE_FLAGS.bits, { "page-2m": 1n, "page-1g": 2n, encrypted: 16n }); // asm/kvm_para.h
  eq([U.KVM_HC_ERRNO.ENOSYS, U.KVM_HC_ERRNO.EOPNOTSUPP], [1000, 95]);
  eq(U.KVM_EXIT_HYPERCALL_LONG_MODE, 1n);
  eq(U.MEMORY_EXIT_FLAGS.bits.private, 8n); // KVM_MEMORY_EXIT_FLAG_PRIVATE
  // elf.h
  eq([S.ELF64_EHDR.size, S.ELF64_PHDR.size], [64, 56]);
  const E = S.ELF64_EHDR.fields, P = S.ELF64_PHDR.fields;
  eq([E.e_machine.offset, E.e_entry.offset, E.e_phoff.offset, E.e_phentsize.offset, E.e_phnum.offset], [
    18,
    24,
    32,
    54,
    56,
  ]);
  eq([P.p_offset.offset, P.p_paddr.offset, P.p_filesz.offset, P.p_memsz.offset], [8, 24, 32, 40]);
  // The raw-syscall library's image (ffi/raw_syscall_lib.ts) writes the rest.
  eq(
    [E.e_version.offset, E.e_shoff.offset, E.e_flags.offset, E.e_ehsize.offset, E.e_shentsize.offset],
    [20, 40, 48, 52, 58],
  );
  eq([E.e_shnum.offset, E.e_shstrndx.offset], [60, 62]);
  eq([S.ELF64_SHDR.size, S.ELF64_SYM.size, S.ELF64_DYN.size], [64, 24, 16]);
  const H = S.ELF64_SHDR.fields, Y = S.ELF64_SYM.fields;
  eq(Object.values(H).map((f) => f.offset), [0, 4, 8, 16, 24, 32, 40, 44, 48, 56]);
  eq(Object.values(Y).map((f) => f.offset), [0, 4, 5, 6, 8, 16]);
  eq(S.ELF64_DYN.fields.d_un.offset, 8);
  const { ELF } = await import("../../ffi/elf.ts");
  eq([ELF.PT_GNU_STACK, ELF.SHT_DYNSYM, ELF.DT_SONAME, ELF.EV_CURRENT], [0x6474e551, 11, 14, 1]);
});
