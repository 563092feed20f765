/** Loader pieces without KVM: identity page tables, ELF parsing, the asm cache. */

import { deepStrictEqual as eq, ok, throws } from "node:assert/strict";
import { buildPageTables } from "../../kvm/loaders/long_mode.ts";
import { isElf, parseElf } from "../../kvm/loaders/elf.ts";
import { guestPath } from "../../kvm/loaders/library.ts";
import { assemble } from "../../kvm/asm.ts";

const MIB2 = 2n << 20n;
const GIB = 1n << 30n;

/** Walks identity tables like the MMU: the physical address `va` translates to, or undefined. */
function walk(bytes: Uint8Array, base: bigint, va: bigint): bigint | undefined {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const read = (table: bigint, i: bigint) => dv.getBigUint64(Number(table - base + i * 8n), true);
  const e4 = read(base, (va >> 39n) & 511n);
  if (!(e4 & 1n)) return undefined;
  const e3 = read(e4 & ~0xfffn, (va >> 30n) & 511n);
  if (!(e3 & 1n)) return undefined;
  if (e3 & 0x80n) return (e3 & ~0xfffn & ~(GIB - 1n)) + (va & (GIB - 1n));
  const e2 = read(e3 & ~0xfffn, (va >> 21n) & 511n);
  if (!(e2 & 1n)) return undefined;
  ok(e2 & 0x80n, "2 MiB page");
  return (e2 & ~(MIB2 - 1n)) + (va & (MIB2 - 1n));
}

Deno.test("page tables identity-map every range with 2 MiB pages, including a slot at 4 GiB", () => {
  const ranges = [{ gpa: 0n, size: 4n << 20n }, { gpa: 4n * GIB, size: 4096n }];
  const { bytes, info } = buildPageTables(ranges, 0x2000n, 0x10000n, false);
  eq([info.pages2m, info.pages1g], [3, 0]);
  for (const va of [0n, 0x1234n, 0x3fffffn, 4n * GIB, 4n * GIB + 0xfffn]) eq(walk(bytes, 0x2000n, va), va);
  eq(walk(bytes, 0x2000n, 0x400000n), undefined);
  eq(walk(bytes, 0x2000n, 3n * GIB), undefined);
});

Deno.test("1 GiB pages where a whole GiB is covered; above 512 GiB a second PDPT", () => {
  const ranges = [{ gpa: GIB, size: 2n * GIB }, { gpa: 600n * GIB, size: MIB2 }];
  const { bytes, info } = buildPageTables(ranges, 0x2000n, 0x10000n, true);
  eq([info.pages1g, info.pages2m], [2, 1]);
  for (const va of [GIB, 2n * GIB + 0x123456n, 600n * GIB + 5n]) eq(walk(bytes, 0x2000n, va), va);
  throws(() => buildPageTables([{ gpa: 0n, size: 64n * GIB }], 0x2000n, 0x4000n, false), /page tables need more/);
});

Deno.test("ELF64 of the guest library: entry and PT_LOAD segments; non-ELF refused", () => {
  const bytes = Deno.readFileSync(guestPath("verify"));
  ok(isElf(bytes));
  const elf = parseElf(bytes);
  eq(elf.entry, 0x100000n);
  ok(elf.segments.some((s) => s.paddr === 0x100000n && s.filesz > 0n));
  ok(elf.segments.some((s) => s.filesz === 0n && s.memsz >= 64n), "bss (the ucall block) is a memsz-only segment");
  throws(() => parseElf(Deno.readFileSync(guestPath("hello16"))), /not an ELF/);
  const bad = bytes.slice();
  bad[18] = 3; // EM_386
  throws(() => parseElf(bad), /not x86-64/);
  throws(() => guestPath("nope"), /no guest 'nope'/);
});

Deno.test("inline asm: assembled by as/ld, then answered from the content-hash cache", () => {
  const dir = Deno.makeTempDirSync();
  const old = Deno.env.get("XDG_CACHE_HOME");
  Deno.env.set("XDG_CACHE_HOME", dir);
  try {
    const a = assemble("mov $0x42, %al; out %al, $0xe9; hlt", { mode: "real" });
    eq([...a.bytes], [0xb0, 0x42, 0xe6, 0xe9, 0xf4]);
    eq(a.cached, false);
    ok(a.path.startsWith(`${dir}/kvmsh/asm/`));
    const b = assemble("mov $0x42, %al; out %al, $0xe9; hlt", { mode: "real" });
    eq(b.cached, true);
    eq(b.bytes, a.bytes);
    // Long mode links at 0x100000: a rip-relative reference resolves against it.
    const c = assemble("lea here(%rip), %rax; here: hlt");
    eq([...c.bytes.subarray(0, 3)], [0x48, 0x8d, 0x05]);
    // …and an absolute one names it: `here` is 0x100005 (b8 + imm32 before it).
    const d = assemble("mov $here, %eax; here: hlt");
    eq([...d.bytes], [0xb8, 0x05, 0x00, 0x10, 0x00, 0xf4]);
    throws(() => assemble("not_an_instruction %zz"), /as failed/);
  } finally {
    if (old === undefined) Deno.env.delete("XDG_CACHE_HOME");
    else Deno.env.set("XDG_CACHE_HOME", old);
    Deno.removeSync(dir, { recursive: true });
  }
});
