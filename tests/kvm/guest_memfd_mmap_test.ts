/**
 * mmap of guest_memfd on real /dev/kvm, the mapping checks of the kernel's guest_memfd_test.c.
 * "Faults" is observed both ways: the fault-safe path (Mapping.read/fill → MemoryFaultError,
 * EFAULT) and a real access in a child process, which dies of SIGBUS. Skipped, with the reason,
 * on a host whose KVM has no guest_memfd (or not the flag set a test needs).
 */

import { deepStrictEqual as eq, ok, rejects } from "node:assert/strict";
import { GUEST_MEMFD_FLAGS, type GuestMemfd, Kvm, KvmError, Mapping, MemoryFaultError } from "../../mod.ts";
import { errno, libc, MADV, MAP, PROT } from "../../ffi/libc.ts";
import { errnoName } from "../../ffi/errno.ts";
import { readProcText } from "../../ffi/procfs.ts";
import { gmemSkipReason } from "../kvm_env.ts";
import {
  expectErrno,
  FLAG_SETS,
  flagSetTest,
  onVm,
  onVmAsync,
  PAGE,
  startFdLeakCheck,
  TOTAL,
} from "./guest_memfd_support.ts";

const endFdCheck = startFdLeakCheck("guest_memfd mmap");

const VAL = 0xaa;
const MMAP = GUEST_MEMFD_FLAGS.bits.mmap;
const INIT_SHARED = GUEST_MEMFD_FLAGS.bits["init-shared"];

/** Expects the fault-safe path to fault (EFAULT) at `at`. */
function expectFault(fn: () => unknown, at: bigint, what: string): void {
  try {
    fn();
  } catch (e) {
    ok(e instanceof MemoryFaultError, `${what}: ${e}`);
    eq(e.errnoName, "EFAULT", what);
    eq(e.faultOffset, at, `${what}: fault offset`);
    ok(e.hint?.includes("SIGBUS"), e.message);
    return;
  }
  throw new Error(`${what}: expected EFAULT, but the access worked`);
}

/** Expects a real access in a child to die of SIGBUS. */
async function expectSigbus(p: ReturnType<GuestMemfd["touchInChild"]>, what: string): Promise<void> {
  const r = await p;
  eq(r.signal, "SIGBUS", `${what}: child ended with ${JSON.stringify(r)}`);
}

for (const fs of FLAG_SETS) {
  if (fs.flags & MMAP) {
    flagSetTest(fs, `guest_memfd [${fs.name}]: MAP_PRIVATE (copy-on-write) mmap is refused with EINVAL`, () => {
      onVm((vm) => {
        using g = vm.createGuestMemfd(TOTAL, fs.flags);
        const e = expectErrno("EINVAL", () => g.mmap({ shared: false }), "MAP_PRIVATE");
        ok(e.hint?.includes("MAP_SHARED"), e.message);
        eq(g.mappings.length, 0);
      });
    });
  } else {
    flagSetTest(
      fs,
      `guest_memfd [${fs.name}]: without MMAP, mmap is refused with ENODEV (one page, whole file, private)`,
      () => {
        onVm((vm) => {
          using g = vm.createGuestMemfd(TOTAL, fs.flags);
          const e = expectErrno("ENODEV", () => g.mmap({ length: PAGE }), "mmap one page");
          ok(e.hint?.includes("without the mmap flag"), e.message);
          expectErrno("ENODEV", () => g.mmap({ length: TOTAL }), "mmap the whole file");
          expectErrno("ENODEV", () => g.mmap({ shared: false }), "MAP_PRIVATE");
          eq(g.mappings.length, 0);
        });
      },
    );
    flagSetTest(
      fs,
      `guest_memfd [${fs.name}]: a touch in a child is the child's mmap ENODEV, as an error`,
      async () => {
        using kvm = Kvm.open();
        using vm = kvm.createVm();
        using g = vm.createGuestMemfd(TOTAL, fs.flags);
        await rejects(g.touchInChild(0n, "read"), (e: unknown) => {
          ok(e instanceof KvmError, String(e));
          eq([e.syscall, e.errnoName], ["mmap", "ENODEV"]);
          ok(e.hint?.includes("without the mmap flag"), e.message);
          return true;
        });
      },
    );
  }

  if ((fs.flags & MMAP) && (fs.flags & INIT_SHARED)) {
    flagSetTest(
      fs,
      `guest_memfd [${fs.name}]: fill, verify, punch the first page → zeroes there, the rest intact`,
      async () => {
        await onVmAsync(async (vm) => {
          using g = vm.createGuestMemfd(TOTAL, fs.flags);
          const m = g.mmap();
          m.fill(0n, TOTAL, VAL);
          eq(m.verify(0n, TOTAL, VAL), undefined);
          g.punchHole(0n, PAGE);
          eq(m.verify(0n, PAGE, 0), undefined, "the punched page reads as zeroes");
          eq(m.verify(PAGE, TOTAL - PAGE, VAL), undefined, "the rest is intact");
          // The same seen by a real load in a child process.
          eq((await g.touchInChild(0n)).value, 0);
          eq((await g.touchInChild(PAGE)).value, VAL);
          m.fill(0n, PAGE, VAL);
          eq(m.verify(0n, TOTAL, VAL), undefined, "refilled");
          // A real store in a child lands in the shared memory.
          const w = await g.touchInChild(TOTAL - 1n, "write", 0x5a);
          eq([w.signal, w.code], [null, 0]);
          eq(m.read(TOTAL - 1n, 1)[0], 0x5a);
          m.unmap();
          eq(g.mappings.length, 0);
        });
      },
    );

    flagSetTest(
      fs,
      `guest_memfd [${fs.name}]: access past the file size faults (a 4x mapping, as upstream)`,
      async () => {
        await onVmAsync(async (vm) => {
          using g = vm.createGuestMemfd(TOTAL, fs.flags);
          const mapLength = TOTAL * 4n;
          // Real accesses: memset over the whole 4x mapping dies at the end of the file …
          await expectSigbus(
            g.touchInChild(0n, "fill", VAL, { mapLength, length: mapLength }),
            "memset over 4x the size",
          );
          // … having filled everything before it; a load at the file size dies too.
          await expectSigbus(g.touchInChild(TOTAL, "read", 0, { mapLength }), "load at the file size");
          await expectSigbus(g.touchInChild(TOTAL * 3n, "write", VAL, { mapLength }), "store past the size");
          const inFile = g.mapping();
          eq(inFile.verify(0n, TOTAL, VAL), undefined, "the child's memset reached every byte of the file");
          // Fault-safe path over the same 4x mapping: EFAULT exactly at the file size.
          const m = g.mmap({ length: mapLength });
          expectFault(() => m.fill(0n, mapLength, VAL), TOTAL, "fill over 4x the size");
          expectFault(() => m.read(TOTAL, 1), TOTAL, "read at the file size");
          expectFault(() => m.write(TOTAL * 2n, new Uint8Array([1])), TOTAL * 2n, "write past the size");
          ok(m.readable(TOTAL - 1n));
          ok(!m.readable(TOTAL));
          eq(m.verify(0n, TOTAL, VAL), undefined);
        });
      },
    );
  }

  if ((fs.flags & MMAP) && !(fs.flags & INIT_SHARED)) {
    flagSetTest(fs, `guest_memfd [${fs.name}]: without INIT_SHARED every access faults (private memory)`, async () => {
      await onVmAsync(async (vm) => {
        using g = vm.createGuestMemfd(TOTAL, fs.flags);
        const m = g.mmap();
        expectFault(() => m.fill(0n, TOTAL, VAL), 0n, "fill");
        for (let off = 0n; off < TOTAL; off += PAGE) {
          expectFault(() => m.read(off, 1), off, `read page ${off / PAGE}`);
          expectFault(
            () => m.write(off + PAGE - 1n, new Uint8Array([VAL])),
            off + PAGE - 1n,
            `write page ${off / PAGE}`,
          );
          await expectSigbus(g.touchInChild(off), `load page ${off / PAGE}`);
        }
        await expectSigbus(g.touchInChild(0n, "fill", VAL, { mapLength: TOTAL, length: TOTAL }), "memset");
        await expectSigbus(g.touchInChild(TOTAL - 1n, "write", VAL), "store");
        // Allocating does not make it shared.
        g.allocate(0n, TOTAL, true);
        expectFault(() => m.read(0n, 1), 0n, "read after fallocate");
      });
    });
  }
}

function pmdSize(): bigint | undefined {
  const t = readProcText("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size")?.trim();
  return t ? BigInt(t) : undefined;
}

const PMD = pmdSize();
const SHARED_SET = FLAG_SETS.find((f) => (f.flags & MMAP) && (f.flags & INIT_SHARED));
if (PMD === undefined) console.warn("# SKIP guest_memfd MADV_COLLAPSE: no transparent hugepages (hpage_pmd_size)");

Deno.test({
  name: "guest_memfd [mmap|init-shared]: MADV_HUGEPAGE is fine, MADV_COLLAPSE is refused with EINVAL",
  // The reason is printed: gmemSkipReason's for the flags, the line above for the PMD size.
  ignore: gmemSkipReason("mmap,init-shared") !== undefined || !SHARED_SET || PMD === undefined,
  fn: () => {
    onVm((vm) => {
      const pmd = PMD!;
      using g = vm.createGuestMemfd(pmd, SHARED_SET!.flags);
      // Reserve 2x, then map the file MAP_FIXED at a PMD-aligned address inside the reservation.
      const reserved = Mapping.anonymous(pmd * 2n, PROT.NONE);
      try {
        const aligned = (reserved.address + pmd - 1n) & ~(pmd - 1n);
        const l = libc();
        const p = l.mmap(
          Deno.UnsafePointer.create(aligned),
          pmd,
          PROT.READ | PROT.WRITE,
          MAP.FIXED | MAP.SHARED,
          g.fd,
          0n,
        );
        eq(p === null ? 0n : BigInt(Deno.UnsafePointer.value(p)), aligned, "the mapping is PMD aligned");
        const mem = new Mapping(p!, pmd, { source: g.name, offset: 0n, shared: true, prot: "rw" });
        for (let off = 0n; off < pmd; off += PAGE) mem.read(off, 1); // populate by reads
        eq(l.madvise(p!, pmd, MADV.HUGEPAGE), 0, "MADV_HUGEPAGE");
        eq(l.madvise(p!, pmd, MADV.COLLAPSE), -1, "MADV_COLLAPSE must fail");
        eq(errnoName(errno()), "EINVAL");
        eq(l.madvise(p!, pmd, MADV.DONTNEED), 0, "MADV_DONTNEED");
        eq(mem.read(0n, 1)[0], 0, "re-faults fine");
      } finally {
        reserved.unmap(); // covers the fixed mapping
      }
    });
  },
});

endFdCheck();
