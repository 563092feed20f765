/**
 * Every command through the real shell, once with `-c` and once piped on stdin: the same output
 * both ways, the expected answer from this host's kernel, and the exit code.
 * @module
 */

import assert from "node:assert/strict";
import { GMEM_SKIP_REASON, gmemSkipReason, gmemTest, KVM_SKIP_REASON, kvmTest, noGmemTest } from "../kvm_env.ts";
import { normalise, runC, runStdin } from "./helpers.ts";

interface Case {
  name: string;
  lines: string[];
  /** Must appear in stdout. */
  out?: RegExp[];
  /** Must not appear in stdout. */
  notOut?: RegExp[];
  /** Must appear in stderr. */
  err?: RegExp[];
  /** Exit code (0 unless the last line fails). */
  code?: number;
  /** Run with --keep-going. */
  keepGoing?: boolean;
  /**
   * The case needs a guest_memfd with these flags (`""`: any guest_memfd): skipped, with the
   * reason (tests/kvm_env.ts gmemSkipReason), on a host whose KVM cannot make one.
   */
  gmem?: string;
  /** The case is what a host WITHOUT guest_memfd answers: runs only where GMEM_SKIP_REASON is set. */
  withoutGmem?: boolean;
}

const VM = "vm create";
const G = "gmem create --size 2M --flags mmap,init-shared";
/** All of stderr after `G` where KVM has no guest_memfd: the warning, then the kernel's ENOTTY with the reason. */
const NO_GMEM = new RegExp(
  "^warning: KVM_CAP_GUEST_MEMFD=0 on vm0 \\(default VM\\): this kernel has no guest_memfd; sending anyway\n" +
    "error: KVM_CREATE_GUEST_MEMFD: ENOTTY \\([^)]+\\) \\[size=0x200000 flags=mmap\\|init-shared\\] " +
    "— this kernel has no guest_memfd \\(KVM_CAP_GUEST_MEMFD=0\\)\n$",
);

const CASES: Case[] = [
  { name: "caps", lines: ["caps"], out: [/API version\s+12/, /KVM_CAP_GUEST_MEMFD_FLAGS \(244\)/] },
  {
    name: "caps name",
    lines: ["caps GUEST_MEMFD_FLAGS"],
    out: [/^KVM_CAP_GUEST_MEMFD_FLAGS \(244\): system \d+, vm \d+/m],
  },
  {
    name: "caps name: mmap|init-shared where guest_memfd has them",
    lines: ["caps GUEST_MEMFD_FLAGS"],
    out: [/KVM_CAP_GUEST_MEMFD_FLAGS \(244\): system 3/],
    gmem: "mmap,init-shared",
  },
  {
    name: "caps name: 0 (none) on a host without guest_memfd",
    lines: ["caps GUEST_MEMFD_FLAGS"],
    out: [/^KVM_CAP_GUEST_MEMFD_FLAGS \(244\): system 0, vm 0 \(none\)$/m],
    withoutGmem: true,
  },
  { name: "vm create", lines: [VM], out: [/^vm0: fd \d+, type default \(current\)$/m] },
  { name: "vm create --type", lines: ["vm create --type default"], out: [/vm0: fd \d+, type default/] },
  {
    name: "vm create --type tdx (refused)",
    lines: ["vm create --type tdx"],
    err: [/KVM_CREATE_VM: EINVAL .*this host does not accept that VM type/],
    code: 1,
  },
  { name: "vm list", lines: [VM, VM, "vm list"], out: [/^\* +vm1 +\d+ +default/m, /^ +vm0 +\d+ +default/m] },
  { name: "vm close", lines: [VM, "vm close vm0", "vm list"], out: [/vm0 closed/, /no VMs/] },
  {
    name: "use (anonymous memory)",
    lines: [VM, VM, "use vm0", "slot set 0 --gpa 0 --size 2M --anon", "vcpu create", "vm list"],
    out: [
      /current VM: vm0/,
      /^slot 0 on vm0: gpa 0x0 size 0x200000 \(2 MiB\) flags none userspace anon/m,
      /^vcpu0: .* vm vm0$/m,
      /^\* +vm0 +\d+ +default/m,
    ],
  },
  {
    name: "use",
    lines: [VM, VM, "use vm0", "gmem create --size 4K"],
    out: [/current VM: vm0/, /gmem0: .* vm vm0/],
    gmem: "",
  },
  {
    name: "gmem create",
    lines: [VM, G],
    out: [/gmem0: fd \d+, size 0x200000 \(2 MiB\), flags mmap\|init-shared, vm vm0/],
    gmem: "mmap,init-shared",
  },
  {
    name: "gmem create odd size is sent",
    lines: [VM, "gmem create --size 1"],
    err: [/KVM_CREATE_GUEST_MEMFD: EINVAL .*size=0x1.*non-zero multiple of the page size/],
    code: 1,
    gmem: "",
  },
  {
    name: "gmem create on a host without guest_memfd: a warning, ENOTTY with the reason, the script stops",
    lines: [VM, G, "echo not reached"],
    out: [/^vm0: fd \d+, type default \(current\)\n$/],
    err: [NO_GMEM],
    code: 1,
    withoutGmem: true,
  },
  {
    name: "gmem create on a host without guest_memfd, --keep-going: nothing is left behind, the VM stays usable",
    lines: [VM, G, "gmem list", "slot set 0 --gpa 0 --size 2M --anon", "vcpu create", "slot list", "vm list"],
    keepGoing: true,
    out: [
      /^no guest_memfds/m,
      /^slot 0 on vm0: gpa 0x0 size 0x200000 \(2 MiB\) flags none userspace anon/m,
      /^vcpu0: .* vm vm0$/m,
      /^0 +0x0 +0x200000 \(2 MiB\) +none +anon 0x[0-9a-f]+ +-$/m,
      /^\* +vm0 +\d+ +default +- +0@0x0\+0x200000 \(2 MiB\) +vcpu0$/m,
    ],
    err: [NO_GMEM],
    code: 1,
    withoutGmem: true,
  },
  {
    name: "gmem create on a host without guest_memfd, --keep-going: a guest still runs on that VM",
    lines: [VM, G, 'run --asm "mov $5, %al; out %al, $0xf4"', "vm list"],
    keepGoing: true,
    out: [/stop: exit-code \(exit code 0x5\)/, /^\* +vm0 +\d+ +default +- +0@0x0\+/m],
    err: [NO_GMEM],
    code: 1,
    withoutGmem: true,
  },
  {
    name: "gmem list",
    lines: [VM, G, "gmem list"],
    out: [/gmem0 +vm0 +\d+ +0x200000 \(2 MiB\) +mmap\|init-shared +0 +-/],
    gmem: "mmap,init-shared",
  },
  {
    name: "gmem stat",
    lines: [VM, G, "gmem stat gmem0"],
    out: [
      /gmem0: fd \d+, vm vm0, size 0x200000 \(2 MiB\), flags mmap\|init-shared/,
      /fstat: st_size 0x200000 \(2 MiB\)/,
    ],
    gmem: "mmap,init-shared",
  },
  {
    name: "gmem mmap",
    lines: [VM, G, "gmem mmap gmem0 --offset 4K --length 8K", "gmem stat gmem0"],
    out: [
      /map0: 0x[0-9a-f]+ size 0x2000 \(8 KiB\) of gmem0 at offset 0x1000 \(shared rw\)/,
      /mapping map0: .* offset 0x1000/,
    ],
    gmem: "mmap,init-shared",
  },
  {
    name: "gmem mmap --private",
    lines: [VM, G, "gmem mmap gmem0 --private"],
    err: [/mmap: EINVAL .*shared=false.*only MAP_SHARED/],
    code: 1,
    gmem: "mmap,init-shared",
  },
  {
    name: "gmem mmap without the mmap flag",
    lines: [VM, "gmem create --size 2M", "gmem mmap gmem0"],
    err: [/mmap: ENODEV .*without the mmap flag/],
    code: 1,
    gmem: "",
  },
  {
    name: "gmem punch",
    lines: [VM, G, "gmem punch gmem0 0 4K"],
    out: [/gmem0: punched 0x0\+0x1000 \(4 KiB\)/],
    gmem: "mmap,init-shared",
  },
  {
    name: "gmem alloc",
    lines: [VM, G, "gmem alloc gmem0 0 8K", "gmem stat gmem0"],
    out: [/allocated 0x0\+0x2000/, /st_blocks \d+ /],
    gmem: "mmap,init-shared",
  },
  {
    name: "gmem alloc --no-keep-size (refused)",
    lines: [VM, G, "gmem alloc gmem0 0 8K --no-keep-size"],
    err: [/fallocate: EOPNOTSUPP .*mode=0x0/],
    code: 1,
    gmem: "mmap,init-shared",
  },
  { name: "gmem read", lines: [VM, G, "gmem read gmem0 16"], err: [/read: EINVAL/], code: 1, gmem: "mmap,init-shared" },
  {
    name: "gmem write",
    lines: [VM, G, "gmem write gmem0 0xaa"],
    err: [/write: EINVAL/],
    code: 1,
    gmem: "mmap,init-shared",
  },
  {
    name: "gmem pread",
    lines: [VM, G, "gmem pread gmem0 0 16"],
    err: [/pread: E[A-Z]+ \(/],
    code: 1,
    gmem: "mmap,init-shared",
  },
  {
    name: "gmem pwrite",
    lines: [VM, G, "gmem pwrite gmem0 0 0xaa"],
    err: [/pwrite: ESPIPE/],
    code: 1,
    gmem: "mmap,init-shared",
  },
  {
    name: "gmem truncate",
    lines: [VM, G, "gmem truncate gmem0 4M"],
    err: [/ftruncate: EINVAL/],
    code: 1,
    gmem: "mmap,init-shared",
  },
  {
    name: "gmem close",
    lines: [VM, G, "gmem close gmem0", "gmem list"],
    out: [/gmem0 closed/, /no guest_memfds/],
    gmem: "mmap,init-shared",
  },
  {
    name: "slot set (gmem at 4 GiB)",
    lines: [VM, G, "slot set 1 --gpa 4G --size 2M --gmem gmem0"],
    out: [
      /slot 1 on vm0: gpa 0x100000000 size 0x200000 \(2 MiB\) flags guest-memfd userspace gmem0 .* gmem gmem0\+0x0/,
    ],
    gmem: "mmap,init-shared",
  },
  {
    name: "slot set --anon",
    lines: [VM, "slot set 0 --gpa 0 --size 1M --anon"],
    out: [/slot 0 on vm0: gpa 0x0 size 0x100000 \(1 MiB\) flags none userspace anon/],
  },
  {
    name: "slot set --userspace none --flags readonly on gmem (refused)",
    lines: [VM, G, "slot set 1 --gpa 4G --size 2M --gmem gmem0 --userspace none --flags readonly"],
    err: [/KVM_SET_USER_MEMORY_REGION2: EINVAL/],
    code: 1,
    gmem: "mmap,init-shared",
  },
  {
    name: "slot del",
    lines: [VM, "slot set 0 --gpa 0 --size 1M", "slot del 0", "slot list"],
    out: [/slot 0 deleted/, /no memslots on vm0/],
  },
  {
    name: "slot set --size 0 deletes the slot and says so (not a 0-byte slot at the new GPA)",
    lines: [VM, "slot set 0 --gpa 0 --size 1M --anon", "slot set 0 --gpa 4M --size 0", "slot list"],
    out: [/^slot 0 deleted from vm0 \(size 0 deletes\)$/m, /no memslots on vm0/],
    notOut: [/size 0x0 \(0 B\)/],
  },
  {
    name: "slot list (anonymous memory)",
    lines: [
      VM,
      "slot set 0 --gpa 0 --size 2M --anon",
      "slot set 1 --gpa 4G --size 1M --anon --flags readonly",
      "slot list",
    ],
    out: [
      /^slot +gpa +size +flags +userspace +gmem$/m,
      /^0 +0x0 +0x200000 \(2 MiB\) +none +anon 0x[0-9a-f]+ +-$/m,
      /^1 +0x100000000 +0x100000 \(1 MiB\) +readonly +anon 0x[0-9a-f]+ +-$/m,
    ],
  },
  {
    name: "slot list",
    lines: [VM, G, "slot set 1 --gpa 4G --size 2M --gmem gmem0 --offset 0", "slot list"],
    out: [/^1 +0x100000000 +0x200000 \(2 MiB\) +guest-memfd +gmem0 0x[0-9a-f]+ +gmem0\+0x0$/m],
    gmem: "mmap,init-shared",
  },
  {
    name: "attr set private (ENOTTY with the reason)",
    lines: [VM, "attr set private 4G 2M"],
    err: [
      /warning: KVM_CAP_MEMORY_ATTRIBUTES=0 on vm0/,
      /KVM_SET_MEMORY_ATTRIBUTES: ENOTTY .*KVM_CAP_MEMORY_ATTRIBUTES=0 on this VM/,
    ],
    code: 1,
  },
  {
    name: "attr show",
    lines: [VM, "attr set shared 0 4K", "attr show"],
    keepGoing: true,
    code: 1,
    err: [/ENOTTY/],
    out: [/vm0: KVM_CAP_MEMORY_ATTRIBUTES = 0/, /0x0 +0x1000 \(4 KiB\) +shared +ENOTTY/],
  },
  {
    name: "x/ and write by gmem offset",
    lines: [
      VM,
      G,
      "write gmem0:0x10 0xde 0xad hex:beef str:ok",
      "x/8xb gmem0:0x10",
      "x/2xw gmem0:0x10",
      "x/1xg gmem0:0x10",
      "x/6c gmem0:0x10",
      "x/2dh gmem0:0x10",
      "x/2uh gmem0:0x10",
    ],
    out: [
      /wrote 6 bytes at gmem0:0x10/,
      /gmem0:0x10: 0xde 0xad 0xbe 0xef 0x6f 0x6b 0x00 0x00/,
      /gmem0:0x10: 0xefbeadde 0x00006b6f/,
      /gmem0:0x10: 0x00006b6fefbeadde/,
      /gmem0:0x10: \\xde \\xad \\xbe \\xef 'o' 'k'/,
      /gmem0:0x10: -21026 -4162/,
      /gmem0:0x10: 44510 61374/,
    ],
    gmem: "mmap,init-shared",
  },
  {
    name: "x/ and write by GPA (anonymous memory): every unit and format",
    lines: [
      VM,
      "slot set 1 --gpa 4G --size 2M --anon",
      "write 0x100000010 0xde 0xad hex:beef str:ok",
      "x/8xb 0x100000010",
      "x/2xw 0x100000010",
      "x/1xg 0x100000010",
      "x/6c 0x100000010",
      "x/2dh 0x100000010",
      "x/2uh 0x100000010",
      "write 0x100000000 fill:0x5a:16",
      "x/4xb 4G",
    ],
    out: [
      /wrote 6 bytes at vm0 gpa 0x100000010/,
      /vm0 gpa 0x100000010: 0xde 0xad 0xbe 0xef 0x6f 0x6b 0x00 0x00/,
      /vm0 gpa 0x100000010: 0xefbeadde 0x00006b6f/,
      /vm0 gpa 0x100000010: 0x00006b6fefbeadde/,
      /vm0 gpa 0x100000010: \\xde \\xad \\xbe \\xef 'o' 'k'/,
      /vm0 gpa 0x100000010: -21026 -4162/,
      /vm0 gpa 0x100000010: 44510 61374/,
      /wrote 16 bytes at vm0 gpa 0x100000000/,
      /vm0 gpa 0x100000000: 0x5a 0x5a 0x5a 0x5a/,
    ],
  },
  {
    name: "x/ and write by GPA",
    lines: [
      VM,
      G,
      "slot set 1 --gpa 4G --size 2M --gmem gmem0",
      "write 0x100000000 fill:0x5a:16",
      "x/4xb 4G",
      "x/4xb gmem0:0",
    ],
    out: [/vm0 gpa 0x100000000: 0x5a 0x5a 0x5a 0x5a/, /gmem0:0x0: 0x5a 0x5a 0x5a 0x5a/],
    gmem: "mmap,init-shared",
  },
  {
    name: "x/ and write through a mapping",
    lines: [VM, G, "gmem mmap gmem0 --offset 4K --length 4K", "write map0:0 0x77", "x/1xb gmem0:4K"],
    out: [/gmem0:0x1000: 0x77/],
    gmem: "mmap,init-shared",
  },
  {
    name: "x/ of private gmem: EFAULT, would SIGBUS",
    lines: [VM, "gmem create --size 2M --flags mmap", "x/16xb gmem0:0"],
    err: [/EFAULT: would SIGBUS/],
    code: 1,
    gmem: "mmap",
  },
  {
    name: "touch (SIGBUS in a child)",
    lines: [VM, "gmem create --size 2M --flags mmap", "touch gmem0:0"],
    out: [/gmem0:0x0 read in a child: SIGBUS/],
    gmem: "mmap",
  },
  {
    name: "touch --write of shared memory",
    lines: [VM, G, "touch gmem0:8 --write --value 0x42", "x/1xb gmem0:8", "touch gmem0:8"],
    out: [/write in a child: stored/, /gmem0:0x8: 0x42/, /read in a child: read 0x42/],
    gmem: "mmap,init-shared",
  },
  {
    name: "vcpu create",
    lines: [VM, "vcpu create", "vm list"],
    out: [/vcpu0: id 0, fd \d+, kvm_run 0x[0-9a-f]+ bytes, vm vm0/, /vcpu0$/m],
  },
  {
    name: "regs and regs set",
    lines: [VM, "vcpu create", "regs set rax=0x42 rip=0x1000", "regs vcpu0"],
    out: [/rax 0x0000000000000042/, /rip 0x0000000000001000/],
  },
  {
    name: "regs set of an unknown register",
    lines: [VM, "vcpu create", "regs set rzz=1"],
    err: [/unknown register 'rzz'/],
    code: 2,
  },
  { name: "sregs", lines: [VM, "vcpu create", "sregs"], out: [/vcpu0: cr0 0x[0-9a-f]+ .* efer 0x0/, /cs +sel 0xf000/] },
  {
    name: "run a real-mode guest",
    lines: [VM, "run scripts/guests/bin/hello16.bin --mode real"],
    out: [/console: Hello, world!/, /stop: HLT; last exit HLT/],
  },
  {
    name: "run --asm with a timeout (a failed run: the script stops)",
    lines: [VM, 'run "jmp ." --asm --timeout 200ms', "echo not reached"],
    out: [/stop: timeout/],
    notOut: [/not reached/],
    err: [/^error: run: the guest did not finish within its --timeout \(200 ms\)$/m],
    code: 1,
  },
  {
    name: "run --asm with a timeout, --keep-going",
    lines: [VM, 'run "jmp ." --asm --timeout 200ms', "echo after"],
    keepGoing: true,
    out: [/stop: timeout/, /^after$/m],
    err: [/^error: run: the guest did not finish/m],
    code: 1,
  },
  {
    name: "step and continue after run",
    lines: [VM, 'run "hlt; nop; 1: jmp 1b" --asm --mode real', "step", "continue --timeout 200ms"],
    out: [
      /^vcpu0: step 1: rip 0x2 \(pc 0x10002\)$/m,
      /^rip 0x2 \(real mode, cs:ip 0x1000:0x2, linear 0x10002, gpa 0x10002\): eb fe/m,
      /stop: timeout; last exit INTR/,
    ],
    // A continue stopped by its timeout fails the script, as a run's does (help: exit status).
    err: [/^error: continue: the guest did not finish within its --timeout \(200 ms\)$/m],
    code: 1,
  },
  { name: "help", lines: ["help"], out: [/gmem create --size S/, /x\/<n><unit><fmt>/, /record start <file.ts>/] },
  {
    name: "help cmd",
    lines: ["help gmem create"],
    out: [/gmem create --size S \[--flags mmap,init-shared\]/, /example: gmem create --size 2M/],
  },
  {
    name: "regs set takes register names in any case",
    lines: [VM, "vcpu create", "regs set RAX=5", "regs"],
    out: [/^ +rax 0x0000000000000005/m],
  },
  { name: "help of a hidden command by name", lines: ["help debug"], out: [/^debug pid$/m, /^debug leak-fd$/m] },
  { name: "history", lines: ["echo a; history"], out: [/^a$/m, /^ +1 +echo a; history$/m] },
  { name: "echo", lines: ["echo hello world"], out: [/^hello world$/m] },
  {
    name: "reset (anonymous memory, a vCPU)",
    lines: [VM, VM, "slot set 0 --gpa 0 --size 2M --anon", "vcpu create", "reset", "vm list", VM],
    out: [
      /^slot 0 on vm1: /m,
      /^vcpu0: .* vm vm1$/m,
      /every VM closed/,
      /no VMs/,
      /^vm2: fd \d+, type default \(current\)$/m,
    ],
  },
  { name: "reset", lines: [VM, G, "reset", "vm list"], out: [/every VM closed/, /no VMs/], gmem: "mmap,init-shared" },
  { name: "exit", lines: ["echo before", "exit 3", "echo after"], out: [/before/], code: 3 },
  {
    name: "exit without a code, nothing failed",
    lines: ["echo before", "exit", "echo after"],
    notOut: [/after/],
    code: 0,
  },
  {
    name: "exit without a code keeps a --keep-going failure's status",
    lines: ["frob", "echo before", "exit", "echo after"],
    keepGoing: true,
    out: [/before/],
    notOut: [/after/],
    err: [/unknown command 'frob'/],
    code: 2,
  },
  {
    name: "slot set on a live slot keeps its memory: flags change and move are accepted",
    lines: [
      VM,
      "slot set 5 --gpa 0 --size 1M",
      "slot set 5 --gpa 0 --size 1M --flags log-dirty",
      "slot set 5 --gpa 2M --size 1M",
    ],
    out: [/slot 5 on vm0: gpa 0x200000 size 0x100000 \(1 MiB\) flags none userspace anon/],
  },
  {
    name: "a fault in a mapping that starts inside its file names where (gmem0+0x2000)",
    lines: [VM, "gmem create --size 2M --flags mmap", "gmem mmap gmem0 --offset 8K --length 4K", "x/1xb map0:0"],
    err: [/EFAULT .*\[source=gmem0\+0x2000 offset=0x0 length=0x1 fault_at=0x0\]/],
    code: 1,
    gmem: "mmap",
  },
  {
    name: "touch of a gmem without the mmap flag: the child's mmap ENODEV is the error",
    lines: [VM, "gmem create --size 2M", "touch gmem0:0", "echo after"],
    err: [/^error: mmap: ENODEV .*in=child\] — this guest_memfd was created without the mmap flag$/m],
    notOut: [/after/],
    code: 1,
    gmem: "",
  },
  {
    name: "continue into SHUTDOWN fails the script as run does",
    lines: [VM, 'run --asm "hlt; ud2" --mode long', "continue", "echo after"],
    err: [/^error: continue: the guest stopped on SHUTDOWN, an exit kvmsh does not resume from$/m],
    notOut: [/after/],
    code: 1,
  },
  {
    name: "continue: the guest's exit code is the status",
    lines: [VM, 'run --asm "hlt; mov $9, %al; out %al, $0xf4" --mode long', "continue"],
    code: 9,
  },
  {
    name: "continue past its --timeout fails",
    lines: [VM, 'run --asm "hlt; 1: jmp 1b" --mode long', "continue --timeout 100ms", "echo after"],
    err: [/continue: the guest did not finish within its --timeout \(100 ms\)/],
    notOut: [/after/],
    code: 1,
  },
  {
    name: "step into SHUTDOWN fails; steps that all finish do not",
    lines: [VM, 'run --asm "hlt; nop; ud2" --mode long', "step", "echo stepped", "step", "echo after"],
    out: [/stepped/],
    err: [/^error: step: the guest stopped on SHUTDOWN/m],
    notOut: [/after/],
    code: 1,
  },
  {
    name: "exit without a code: the last run's exit code",
    lines: [VM, 'run --asm "mov $5, %al; out %al, $0xf4"', "exit"],
    code: 5,
  },
  {
    name: "run's exit code is the status",
    lines: [VM, 'run --asm "mov $7, %al; out %al, $0xf4"'],
    out: [/exit code 0x7/],
    code: 7,
  },
];

/** Why this case does not run here (undefined: it runs). */
function caseSkipReason(c: Case): string | undefined {
  if (KVM_SKIP_REASON !== undefined) return KVM_SKIP_REASON;
  if (c.withoutGmem) return GMEM_SKIP_REASON === undefined ? "this host has guest_memfd" : undefined;
  return c.gmem === undefined ? undefined : gmemSkipReason(c.gmem);
}

for (const c of CASES) {
  const register = c.withoutGmem
    ? noGmemTest
    : c.gmem !== undefined
    ? (n: string, f: () => Promise<void>) => gmemTest(n, f, c.gmem)
    : kvmTest;
  register(`shell: ${c.name} (-c and stdin give the same answer)`, async () => {
    const extra = c.keepGoing ? ["--keep-going"] : [];
    const byC = await runC(c.lines, extra);
    const byStdin = await runStdin(c.lines, extra);
    for (const r of [byC, byStdin]) {
      assert.equal(r.code, c.code ?? 0, `exit code; stderr: ${r.stderr}`);
      for (const re of c.out ?? []) assert.match(r.stdout, re);
      for (const re of c.notOut ?? []) assert.doesNotMatch(r.stdout, re);
      for (const re of c.err ?? []) assert.match(r.stderr, re);
      if (!c.err) assert.equal(r.stderr, "");
    }
    assert.equal(normalise(byC.stdout), normalise(byStdin.stdout));
    assert.equal(normalise(byC.stderr), normalise(byStdin.stderr));
  });
}

kvmTest("shell: every command of the table is covered above", async () => {
  const r = await runC(["help --json"]);
  const names = (JSON.parse(r.stdout).result.commands as { name: string }[]).map((c) => c.name);
  // Each command as typed (not a substring: `use` is not covered by `--userspace`, `regs` not by `sregs`).
  const covered = (cases: Case[]) => {
    const typed = cases.flatMap((c) => c.lines).flatMap((l) => l.split(";")).map((c) => c.trim());
    return (n: string) => typed.some((c) => n === "x" ? c.startsWith("x/") : c === n || c.startsWith(`${n} `));
  };
  const checked = names.filter((n) => !["record start", "record stop", "source"].includes(n));
  const all = covered(CASES);
  assert.deepEqual(checked.filter((n) => !all(n)), []);
  // And by cases that run on this host: only the guest_memfd commands may lack one (a host without it).
  const here = covered(CASES.filter((c) => caseSkipReason(c) === undefined));
  const guestMemfdOnly = (n: string) => n.startsWith("gmem ") || n === "touch";
  assert.deepEqual(checked.filter((n) => !here(n) && !guestMemfdOnly(n)), []);
});
