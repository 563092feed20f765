/**
 * The ABI points of the guest_memfd MMAP / INIT_SHARED series:
 * - KVM_CAP_GUEST_MEMFD_FLAGS enumerates exactly the flags KVM_CREATE_GUEST_MEMFD accepts;
 * - MMAP without INIT_SHARED is private: the fault-safe path reports EFAULT, a real access SIGBUS;
 * - INIT_SHARED memory is usable from the host (and a child process) and from the guest;
 * - memory attributes and MEMORY_FAULT exits where the VM type supports them (skipped otherwise;
 *   KVM_SET_MEMORY_ATTRIBUTES must then answer ENOTTY, checked on any host, with guest_memfd or not).
 * Run: `./kvmsh scenario scripts/gmem_mmap_init_shared.ts`.
 * @module
 */

import {
  CAP,
  expectAccess,
  expectBytes,
  expectErrno,
  expectExit,
  expectFault,
  expectOk,
  expectSigbus,
  expectTrue,
  GUEST_MEMFD_FLAGS,
  GUEST_VERIFY_THEN_FILL,
  hex,
  MEMORY_ATTRIBUTES,
  requires,
  runGuest,
  scenario,
  step,
} from "../mod.ts";

const PAGE = 4096n;
const SIZE = PAGE * 4n;

function names(f: bigint): string {
  return GUEST_MEMFD_FLAGS.format(f) || "0";
}

scenario("KVM_CAP_GUEST_MEMFD_FLAGS enumerates exactly the flags KVM_CREATE_GUEST_MEMFD accepts", async (t) => {
  const vm = t.vm();
  const cap = vm.supportedGmemFlags();
  t.note(`KVM_CAP_GUEST_MEMFD_FLAGS = ${hex(cap)} (${names(cap)})`);
  await step("each flag bit alone", () => {
    const wrong: string[] = [];
    for (let bit = 0n; bit < 64n; bit++) {
      const f = 1n << bit;
      let got = "ok";
      try {
        vm.createGuestMemfd(PAGE, f).close();
      } catch (e) {
        got = (e as { errnoName?: string }).errnoName ?? String(e);
      }
      const want = f & cap ? "ok" : "EINVAL";
      if (got !== want) wrong.push(`${hex(f)} (${names(f)}): ${got}, expected ${want}`);
    }
    expectTrue(wrong.length === 0, "a bit is accepted iff the cap lists it (EINVAL otherwise)", wrong.join("; "));
  });
  await step("every flag the cap lists, together", () => {
    expectOk(() => vm.createGuestMemfd(PAGE, cap).close(), `flags ${names(cap)} together are accepted`);
  });
  await step("a known flag the cap does not list", () => {
    const missing = GUEST_MEMFD_FLAGS.all & ~cap;
    if (missing === 0n) t.skip(`the cap lists every flag kvmsh knows (${names(GUEST_MEMFD_FLAGS.all)})`);
    expectErrno("EINVAL", () => vm.createGuestMemfd(PAGE, missing), `flags ${names(missing)} (not in the cap): EINVAL`);
  });
}, { requires: [{ cap: "GUEST_MEMFD" }, { cap: "GUEST_MEMFD_FLAGS", vm: true }] });

scenario("MMAP without INIT_SHARED is private: host accesses fault", async (t) => {
  const vm = t.vm();
  using g = expectOk(() => vm.createGuestMemfd(SIZE, "mmap"), "create guest_memfd flags mmap");
  const m = expectOk(() => g.mmap(), "mmap(MAP_SHARED) works");
  await step("fault-safe path", () => {
    expectFault(() => m.read(0n, 1), "fault-safe load reports EFAULT");
    expectFault(() => m.write(PAGE, new Uint8Array([1])), "fault-safe store reports EFAULT");
  });
  await step("real access in a child", async () => {
    await expectSigbus(g, 0n, "read", "load in a child gets SIGBUS");
    await expectSigbus(g, PAGE, "write", "store in a child gets SIGBUS");
  });
}, { requires: [{ gmemFlags: "mmap" }] });

scenario("INIT_SHARED memory is usable from the host and the guest", async (t) => {
  const vm = t.vm();
  using g = expectOk(() => vm.createGuestMemfd(SIZE, "mmap,init-shared"), "create guest_memfd flags mmap|init-shared");
  await step("host writes and reads back", () => {
    g.fillMem(0n, SIZE, 0x5a);
    expectBytes(() => g.readMem(0n, Number(SIZE)), 0x5a, "host fill 0x5a reads back everywhere");
  });
  await step("a child process sees the host's bytes and the host sees the child's", async () => {
    await expectAccess(g, PAGE, "read", 0x5a, "child load reads the host's 0x5a");
    await expectAccess(g, PAGE * 2n, "write", 0xa5, "child store of 0xa5 works");
    expectBytes(() => g.readMem(PAGE * 2n, 1), [0xa5], "host reads the child's 0xa5");
  });
  await step("the guest reads the host's bytes and the host reads the guest's (userspace_addr = gmem mapping)", () => {
    const gpa = 1n << 32n;
    g.fillMem(0n, SIZE, 0xaa);
    vm.addMemslot({ slot: 1, gpa, size: SIZE, gmem: g, userspace: "gmem" });
    expectExit(
      "HLT",
      () => runGuest(vm, { asm: GUEST_VERIFY_THEN_FILL, args: [gpa, SIZE, 0xaa, 0x77], timeoutMs: 10_000 }),
      "guest reads the host's 0xaa, writes 0x77, halts",
    );
    expectBytes(() => g.readMem(0n, Number(SIZE)), 0x77, "host reads the guest's 0x77");
    vm.deleteMemslot(1); // before `using g` closes the gmem: a live slot's gmem refuses to close
  });
  await step("punched memory reads zero and is shared again", () => {
    g.punchHole(0n, PAGE);
    expectBytes(() => g.readMem(0n, Number(PAGE)), 0, "punched page reads zero");
    g.fillMem(0n, PAGE, 0x11);
    expectBytes(() => g.readMem(0n, 1), [0x11], "refilled page reads 0x11");
  });
}, { requires: [{ gmemFlags: "mmap,init-shared" }] });

scenario("memory attributes follow KVM_CAP_MEMORY_ATTRIBUTES", async (t) => {
  const vm = t.vm();
  const attrs = vm.checkExtension(CAP.MEMORY_ATTRIBUTES);
  const priv = (BigInt(attrs) & MEMORY_ATTRIBUTES.bits.private) !== 0n;
  t.note(`KVM_CAP_MEMORY_ATTRIBUTES on a default VM = ${hex(attrs)}`);
  await step("a VM without attributes refuses KVM_SET_MEMORY_ATTRIBUTES", () => {
    if (attrs !== 0) t.skip(`this VM type supports attributes (${hex(attrs)})`);
    expectErrno("ENOTTY", () => vm.setPrivate(0n, PAGE), "KVM_SET_MEMORY_ATTRIBUTES answers ENOTTY");
  });
  await step("private attribute on a gmem slot", () => {
    if (!priv) t.skip(`KVM_CAP_MEMORY_ATTRIBUTES = ${hex(attrs)}: no private attribute on this VM type`);
    requires({ cap: "GUEST_MEMFD" }); // the only step here that needs a guest_memfd
    using g = vm.createGuestMemfd(SIZE, 0n);
    vm.addMemslot({ slot: 1, gpa: 1n << 32n, size: SIZE, gmem: g, userspace: "anon" });
    expectOk(() => vm.setPrivate(1n << 32n, SIZE), "mark the slot private");
    expectOk(() => vm.setShared(1n << 32n, PAGE), "mark the first page shared again");
    vm.deleteMemslot(1); // before `using g` closes the gmem: a live slot's gmem refuses to close
  });
  await step("a guest access to a private GPA exits with MEMORY_FAULT (private)", () => {
    if (!priv) t.skip(`KVM_CAP_MEMORY_ATTRIBUTES = ${hex(attrs)}: no private attribute, so no private faults`);
    const gpa = 2n << 32n;
    vm.addMemslot({ slot: 2, gpa, size: SIZE, userspace: "anon" });
    vm.setPrivate(gpa, PAGE);
    expectExit(
      { reason: "MEMORY_FAULT", private: true, gpa, size: PAGE },
      () => runGuest(vm, { asm: GUEST_VERIFY_THEN_FILL, args: [gpa, PAGE, 0, 0x100], timeoutMs: 10_000 }),
      "guest load of a private page without guest_memfd: MEMORY_FAULT private",
    );
  });
});
