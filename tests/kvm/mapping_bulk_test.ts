/**
 * The bulk paths of Mapping (fill, verify, large read/write) on real guest_memfd memory: they
 * go direct (memset/memcmp/memcpy) only over ranges proven accessible, and a fault is still a
 * MemoryFaultError (EFAULT) at the right offset, never a SIGBUS. The guest_memfd tests are
 * skipped, with the reason, on a host whose KVM cannot make the gmem they need; each has a
 * counterpart over anonymous memory (PROT_NONE for what cannot be accessed, MADV_DONTNEED for a
 * punched hole) that runs everywhere.
 */

import { deepStrictEqual as eq, ok, throws } from "node:assert/strict";
import { BULK_MIN, mmapRaw } from "../../kvm/mapping.ts";
import { cstr, libc, MADV, MAP, pageSize } from "../../ffi/libc.ts";
import { Mapping, MemoryFaultError, openKvm, PROT } from "../../mod.ts";
import { gmemTest, kvmTest } from "../kvm_env.ts";

const MIB = 1n << 20n;
const SIZE = 4n * MIB;

function expectFault(fn: () => unknown, at: bigint, what: string): void {
  try {
    fn();
  } catch (e) {
    ok(e instanceof MemoryFaultError, `${what}: ${e}`);
    eq(e.errnoName, "EFAULT", what);
    eq(e.faultOffset, at, `${what}: fault offset`);
    return;
  }
  throw new Error(`${what}: expected EFAULT, but the access worked`);
}

gmemTest("mapping bulk: fill/verify/read/write of INIT_SHARED gmem, mismatch found at its offset", () => {
  using kvm = openKvm();
  using vm = kvm.createVm();
  const g = vm.createGuestMemfd(SIZE, "mmap,init-shared");
  const m = g.mapping();
  m.fill(0n, SIZE, 0x5a);
  eq(m.verify(0n, SIZE, 0x5a), undefined);
  m.write(3n * MIB + 12345n, new Uint8Array([7]));
  eq(m.verify(0n, SIZE, 0x5a), { offset: 3n * MIB + 12345n, found: 7 });
  eq(m.verify(1n, 3n * MIB, 0x5a), undefined, "range ending before the odd byte");
  // Unaligned bulk fill inside the range, checked byte-exact around its ends.
  m.fill(100n, 2n * MIB, 0x11);
  eq([...m.read(98n, 4)], [0x5a, 0x5a, 0x11, 0x11]);
  eq([...m.read(100n + 2n * MIB - 2n, 4)], [0x11, 0x11, 0x5a, 0x5a]);
  // A large read and write take the direct path and agree with small ones.
  const big = new Uint8Array(Number(MIB) + 3).map((_, i) => i * 7);
  m.write(MIB + 1n, big);
  eq(m.read(MIB + 1n, big.length), big);
  eq(m.read(MIB + 1n + 1000n, 3), big.subarray(1000, 1003));
  // The value is a byte: 0x1a5 fills and verifies as 0xa5.
  m.fill(0n, BigInt(BULK_MIN), 0x1a5);
  eq(m.verify(0n, BigInt(BULK_MIN), 0xa5), undefined);
}, "mmap,init-shared");

gmemTest("mapping bulk: gmem without INIT_SHARED — every bulk op is EFAULT at offset 0, no SIGBUS", () => {
  using kvm = openKvm();
  using vm = kvm.createVm();
  const g = vm.createGuestMemfd(SIZE, "mmap");
  const m = g.mapping();
  expectFault(() => m.fill(0n, SIZE, 1), 0n, "fill");
  expectFault(() => m.verify(0n, SIZE, 0), 0n, "verify");
  expectFault(() => m.read(MIB, Number(MIB)), MIB, "read");
  expectFault(() => m.write(MIB, new Uint8Array(Number(MIB))), MIB, "write");
}, "mmap");

gmemTest("mapping bulk: a mapping longer than the file faults at the end of the file, after the good part", () => {
  using kvm = openKvm();
  using vm = kvm.createVm();
  const g = vm.createGuestMemfd(SIZE, "mmap,init-shared");
  const m = g.mmap({ length: 2n * SIZE });
  expectFault(() => m.fill(MIB, SIZE, 0x33), SIZE, "fill across EOF");
  eq(m.verify(MIB, SIZE - MIB, 0x33), undefined, "the part before EOF was written");
  expectFault(() => m.verify(MIB, 2n * SIZE - MIB, 0x33), SIZE, "verify: no mismatch before EOF, then a fault");
  eq(m.verify(0n, 2n * SIZE, 0x33), { offset: 0n, found: 0 }, "a mismatch before EOF is reported, no fault");
  // The proven part stays fast and correct after the failed proof next to it.
  m.fill(0n, SIZE, 0x44);
  eq(m.verify(0n, SIZE, 0x44), undefined);
}, "mmap,init-shared");

gmemTest("mapping bulk: punch-hole then fill/verify again (proof kept; pages fault back in as zeroes)", () => {
  using kvm = openKvm();
  using vm = kvm.createVm();
  const g = vm.createGuestMemfd(SIZE, "mmap,init-shared");
  const m = g.mapping();
  m.fill(0n, SIZE, 0x77);
  g.punchHole(MIB, 2n * MIB);
  eq(m.verify(0n, SIZE, 0x77), { offset: MIB, found: 0 });
  eq(m.verify(MIB, 2n * MIB, 0), undefined);
  m.fill(MIB, 2n * MIB, 0x77);
  eq(m.verify(0n, SIZE, 0x77), undefined);
}, "mmap,init-shared");

gmemTest("mapping bulk: a read-only mapping — fill and write are EFAULT, verify and read work", () => {
  using kvm = openKvm();
  using vm = kvm.createVm();
  const g = vm.createGuestMemfd(SIZE, "mmap,init-shared");
  g.mapping().fill(0n, SIZE, 9);
  const ro = g.mmap({ prot: PROT.READ });
  expectFault(() => ro.fill(0n, SIZE, 1), 0n, "fill");
  expectFault(() => ro.write(0n, new Uint8Array(Number(MIB))), 0n, "write");
  eq(ro.verify(0n, SIZE, 9), undefined);
  eq(ro.read(0n, Number(MIB)).every((b) => b === 9), true);
}, "mmap,init-shared");

// The same bulk paths over memory that is not guest_memfd: they run on every host (no /dev/kvm needed).

/** Anonymous memory of `size` for `fn`, unmapped after. */
function withAnon(size: bigint, fn: (m: Mapping) => void): void {
  const m = Mapping.anonymous(size);
  try {
    fn(m);
  } finally {
    m.unmap();
  }
}

/** mprotect of `[offset, offset+length)` of `m`. */
function protect(m: Mapping, offset: bigint, length: bigint, prot: number): void {
  eq(libc().mprotect(Deno.UnsafePointer.offset(m.pointer, Number(offset))!, length, prot), 0, "mprotect");
}

Deno.test("mapping bulk: fill/verify/read/write of anonymous memory, mismatch found at its offset", () => {
  withAnon(SIZE, (m) => {
    m.fill(0n, SIZE, 0x5a);
    eq(m.verify(0n, SIZE, 0x5a), undefined);
    m.write(3n * MIB + 12345n, new Uint8Array([7]));
    eq(m.verify(0n, SIZE, 0x5a), { offset: 3n * MIB + 12345n, found: 7 });
    eq(m.verify(1n, 3n * MIB, 0x5a), undefined, "range ending before the odd byte");
    // Unaligned bulk fill inside the range, checked byte-exact around its ends.
    m.fill(100n, 2n * MIB, 0x11);
    eq([...m.read(98n, 4)], [0x5a, 0x5a, 0x11, 0x11]);
    eq([...m.read(100n + 2n * MIB - 2n, 4)], [0x11, 0x11, 0x5a, 0x5a]);
    // A large read and write take the direct path and agree with small ones.
    const big = new Uint8Array(Number(MIB) + 3).map((_, i) => i * 7);
    m.write(MIB + 1n, big);
    eq(m.read(MIB + 1n, big.length), big);
    eq(m.read(MIB + 1n + 1000n, 3), big.subarray(1000, 1003));
    // The value is a byte: 0x1a5 fills and verifies as 0xa5.
    m.fill(0n, BigInt(BULK_MIN), 0x1a5);
    eq(m.verify(0n, BigInt(BULK_MIN), 0xa5), undefined);
  });
});

Deno.test("mapping bulk: PROT_NONE anonymous memory — every bulk op is EFAULT where it starts, no SIGSEGV", () => {
  const m = Mapping.anonymous(SIZE, PROT.NONE);
  try {
    expectFault(() => m.fill(0n, SIZE, 1), 0n, "fill");
    expectFault(() => m.verify(0n, SIZE, 0), 0n, "verify");
    expectFault(() => m.read(MIB, Number(MIB)), MIB, "read");
    expectFault(() => m.write(MIB, new Uint8Array(Number(MIB))), MIB, "write");
    expectFault(() => m.read(SIZE - 1n, 1), SIZE - 1n, "a small read");
  } finally {
    m.unmap();
  }
});

Deno.test("mapping bulk: a mapping whose second half is PROT_NONE faults where it starts, after the good part", () => {
  withAnon(2n * SIZE, (m) => {
    protect(m, SIZE, SIZE, PROT.NONE);
    expectFault(() => m.fill(MIB, SIZE, 0x33), SIZE, "fill across the boundary");
    eq(m.verify(MIB, SIZE - MIB, 0x33), undefined, "the part before the boundary was written");
    expectFault(() => m.verify(MIB, 2n * SIZE - MIB, 0x33), SIZE, "verify: no mismatch before it, then a fault");
    eq(m.verify(0n, 2n * SIZE, 0x33), { offset: 0n, found: 0 }, "a mismatch before the boundary is reported, no fault");
    // The proven part stays fast and correct after the failed proof next to it.
    m.fill(0n, SIZE, 0x44);
    eq(m.verify(0n, SIZE, 0x44), undefined);
  });
});

Deno.test("mapping bulk: MADV_DONTNEED then fill/verify again (proof kept; pages fault back in as zeroes)", () => {
  withAnon(SIZE, (m) => {
    m.fill(0n, SIZE, 0x77);
    eq(libc().madvise(Deno.UnsafePointer.offset(m.pointer, Number(MIB))!, 2n * MIB, MADV.DONTNEED), 0);
    eq(m.verify(0n, SIZE, 0x77), { offset: MIB, found: 0 });
    eq(m.verify(MIB, 2n * MIB, 0), undefined);
    m.fill(MIB, 2n * MIB, 0x77);
    eq(m.verify(0n, SIZE, 0x77), undefined);
  });
});

Deno.test("mapping bulk: a read-only mapping of a memfd — fill and write are EFAULT, verify and read work", () => {
  const l = libc();
  const fd = l.memfd_create(cstr("kvmsh-bulk"), 1 /* MFD_CLOEXEC */);
  ok(fd >= 0, "memfd_create");
  let rw: Mapping | undefined;
  let ro: Mapping | undefined;
  try {
    eq(l.ftruncate(fd, SIZE), 0);
    const info = { source: "memfd", offset: 0n, shared: true };
    rw = new Mapping(mmapRaw(SIZE, PROT.READ | PROT.WRITE, MAP.SHARED, fd, 0n), SIZE, { ...info, prot: "rw" });
    ro = new Mapping(mmapRaw(SIZE, PROT.READ, MAP.SHARED, fd, 0n), SIZE, { ...info, prot: "r" });
    rw.fill(0n, SIZE, 9);
    expectFault(() => ro!.fill(0n, SIZE, 1), 0n, "fill");
    expectFault(() => ro!.write(0n, new Uint8Array(Number(MIB))), 0n, "write");
    eq(ro.verify(0n, SIZE, 9), undefined);
    eq(ro.read(0n, Number(MIB)).every((b) => b === 9), true);
  } finally {
    ro?.unmap();
    rw?.unmap();
    l.close(fd);
  }
});

kvmTest("mapping bulk: anonymous memory takes the direct path too", () => {
  const m = Mapping.anonymous(SIZE);
  try {
    m.fill(0n, SIZE, 3);
    eq(m.verify(0n, SIZE, 3), undefined);
    eq(m.verify(0n, SIZE, 4), { offset: 0n, found: 3 });
  } finally {
    m.unmap();
  }
});

Deno.test("Mapping: a new access epoch drops the proofs: memory made inaccessible since faults, never crashes", () => {
  const size = 4n << 20n;
  const p = mmapRaw(size, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS, -1, 0n);
  let epoch = 0;
  const m = new Mapping(p, size, { source: "anon", offset: 0n, shared: false, prot: "rw" }, undefined, () => epoch);
  m.fill(0n, size, 0x5a); // proves (and remembers) both 2 MiB granules
  m.verify(0n, size, 0x5a);
  // What a conversion to private does to a guest_memfd mapping, here with mprotect: the pages go.
  eq(libc().mprotect(p, size, PROT.NONE), 0);
  epoch++;
  throws(() => m.fill(0n, size, 1), MemoryFaultError);
  throws(() => m.verify(0n, size, 0x5a), MemoryFaultError);
  libc().munmap(p, size);
});

Deno.test("Mapping: the bulk path faults in only the bytes asked for, not the 2 MiB around them", () => {
  const size = 8n << 20n;
  const m = Mapping.anonymous(size);
  try {
    // A host with transparent huge pages "always" would back the write with a 2 MiB folio whatever
    // kvmsh asked for: rule the kernel's choice out, so what is counted is what kvmsh faulted in.
    eq(libc().madvise(m.pointer, size, MADV.NOHUGEPAGE), 0);
    // Resident pages of exactly this mapping (mincore: a merged neighbour's pages are not counted,
    // as smaps' per-VMA Rss would count them).
    const resident = () => {
      const vec = new Uint8Array(Number(size) / pageSize());
      eq(libc().mincore(m.pointer, size, vec), 0);
      return vec.reduce((n, v) => n + (v & 1), 0) * pageSize() / 1024;
    };
    eq(resident(), 0, "nothing resident before the write");
    m.write(4n << 20n, new Uint8Array(64 * 1024).fill(7));
    eq(resident(), 64, "kB resident after a 64 KiB write");
    eq(m.read(4n << 20n, 64 * 1024).every((b) => b === 7), true);
  } finally {
    m.unmap();
  }
});
