/**
 * The vcpu commands' table entries and their behaviour (commands/vcpu.ts), loaded with the table: `vm create`
 * and `run` are on the path of nearly every kvmsh process, where an `import()` costs more (~1.5 ms for
 * the vcpu group) than loading them with the shell; the other groups load on first use.
 * @module
 */

import { REG_NAMES } from "../../core.ts";
import { objects, paths, words } from "../commands/complete_helpers.ts";
import type { Command } from "../commands/types.ts";
import { vcpuImpl } from "../commands/vcpu.ts";

const load = () => Promise.resolve(vcpuImpl);

const VCPU_ARG = { name: "vcpu", optional: true, complete: objects("vcpu") };

/** vcpu commands. */
export const vcpuCommands: Command[] = [
  {
    name: "vcpu create",
    summary: "KVM_CREATE_VCPU on the current VM (and its kvm_run mapping)",
    usage: "vcpu create [--id N]",
    example: "vcpu create",
    flags: [{ name: "id", value: "N", help: "vCPU id (default: one more than the highest id created on this VM)" }],
    load,
  },
  {
    name: "regs",
    summary: "KVM_GET_REGS, or KVM_SET_REGS of the given registers",
    usage: "regs [vcpu] [set r=v …]",
    example: "regs set rax=1 rip=0x1000",
    args: [VCPU_ARG, {
      name: "set r=v",
      optional: true,
      rest: true,
      complete: words(["set", ...REG_NAMES.map((r) => `${r}=`)]),
    }],
    load,
  },
  {
    name: "sregs",
    summary: "KVM_GET_SREGS: control registers, EFER, segments, GDT/IDT",
    usage: "sregs [vcpu]",
    example: "sregs vcpu0",
    args: [VCPU_ARG],
    load,
  },
  {
    name: "run",
    summary:
      "loads a guest (flat binary, ELF64, or --asm text) on the current VM and runs it; Ctrl-C stops it; the value it writes to port 0xF4 is kvmsh's exit status (help: exit status)",
    usage:
      "run <guest.bin|guest.elf|asm text> [--asm] [--mode real|long] [--timeout 5s] [--memory anon|gmem:FLAGS] [--userspace none|gmem|anon] [--arg V]… [--exit-hypercall] [--vcpu vcpuN]",
    example: "run scripts/guests/bin/hello16.bin --mode real",
    args: [{ name: "guest", complete: paths() }],
    flags: [
      { name: "asm", help: "the argument is AT&T assembly text, not a file" },
      {
        name: "mode",
        value: "M",
        help: "real or long (default: long for an ELF or --asm, real for a flat binary)",
        complete: words(["real", "long"]),
      },
      {
        name: "timeout",
        value: "T",
        help: "stop after T (5s, 500ms); default 5s; 0 or none: no timeout (Ctrl-C stops)",
      },
      {
        name: "memory",
        value: "MEM",
        help: "main memory: anon (the default: no --memory is anon, also after a run with gmem) or gmem:<flags>",
        complete: words(["anon", "gmem:mmap,init-shared", "gmem:mmap", "gmem"]),
      },
      {
        name: "userspace",
        value: "U",
        help: "gmem memory's userspace_addr: none, gmem, anon",
        complete: words(["none", "gmem", "anon"]),
      },
      {
        name: "arg",
        value: "V",
        repeat: true,
        help:
          "guest arguments in rdi, rsi, rdx, rcx, r8, r9: repeat it (--arg 1 --arg 0x2000) or give a list (--arg 1,0x2000)",
      },
      {
        name: "exit-hypercall",
        help:
          "KVM_ENABLE_CAP(KVM_CAP_EXIT_HYPERCALL) with the KVM_HC_MAP_GPA_RANGE bit first, so the guest's MAP_GPA_RANGE vmcall exits to kvmsh (which converts the range's attributes); the kernel's answer is shown",
      },
      {
        name: "vcpu",
        value: "VCPU",
        help: "vCPU to run (default: the one the last run used, else the VM's first)",
        complete: objects("vcpu"),
      },
    ],
    load,
  },
];
