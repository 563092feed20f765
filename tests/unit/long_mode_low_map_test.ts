/** The whole-low-512-GiB identity map: 1 GiB pages, or 2 MiB pages through 512 page directories elsewhere. */

import { deepStrictEqual as eq } from "node:assert/strict";
import { buildPageTables, identityPageDirectories, PD_AREA_SIZE } from "../../kvm/loaders/long_mode.ts";

const GIB = 1n << 30n;
const MIB2 = 2n << 20n;
const BASE = 0x2000n;
const PDS = 512n * GIB;

/** Walks tables held in `mem` (GPA → bytes regions) like the MMU does; undefined where not present. */
function walk(mem: [bigint, Uint8Array][], va: bigint): bigint | undefined {
  const read = (table: bigint, i: bigint): bigint => {
    const at = table + i * 8n;
    for (const [gpa, b] of mem) {
      if (at >= gpa && at + 8n <= gpa + BigInt(b.length)) {
        return new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(Number(at - gpa), true);
      }
    }
    throw new Error(`table read at ${at.toString(16)} outside the tables`);
  };
  const e4 = read(BASE, (va >> 39n) & 511n);
  if (!(e4 & 1n)) return undefined;
  const e3 = read(e4 & ~0xfffn, (va >> 30n) & 511n);
  if (!(e3 & 1n)) return undefined;
  if (e3 & 0x80n) return (e3 & 0xffffffffff000n & ~(GIB - 1n)) + (va & (GIB - 1n));
  const e2 = read(e3 & ~0xfffn, (va >> 21n) & 511n);
  if (!(e2 & 1n) || !(e2 & 0x80n)) return undefined;
  return (e2 & 0xffffffffff000n & ~(MIB2 - 1n)) + (va & (MIB2 - 1n));
}

const PROBES = [0n, 0x1234n, GIB - 1n, 0x900000000n, 37n * GIB + 0x123457n, 300n * GIB + 5n, 512n * GIB - 1n];

Deno.test("low map 1g: 512 one-GiB pages map every address below 512 GiB; nothing above unless a slot is there", () => {
  const { bytes, info } = buildPageTables(
    [{ gpa: 0n, size: 4n << 20n }, { gpa: 600n * GIB, size: MIB2 }],
    BASE,
    0x10000n,
    true,
    "1g",
  );
  eq([info.lowMap, info.pages1g, info.pages2m], ["1g", 512, 1]);
  const mem: [bigint, Uint8Array][] = [[BASE, bytes]];
  for (const va of PROBES) eq(walk(mem, va), va);
  eq(walk(mem, 600n * GIB + 7n), 600n * GIB + 7n);
  eq(walk(mem, 700n * GIB), undefined);
});

Deno.test("low map 2m: the PDPT points at the 512 directories at PDS; every 2 MiB page below 512 GiB is identity", () => {
  const { bytes, info } = buildPageTables(
    [{ gpa: 0n, size: 4n << 20n }, { gpa: 4n * GIB, size: MIB2 }],
    BASE,
    0x10000n,
    false,
    {
      pds: PDS,
    },
  );
  eq(info.lowMap, "2m");
  eq(info.pages2m, 512 * 512);
  eq(bytes.length, 2 * 4096, "PML4 and one PDPT in the small area; the ranges below 512 GiB need nothing more");
  const pds = identityPageDirectories();
  eq(BigInt(pds.length), PD_AREA_SIZE);
  const mem: [bigint, Uint8Array][] = [[BASE, bytes], [PDS, pds]];
  for (const va of PROBES) eq(walk(mem, va), va);
  for (let g = 0n; g < 512n; g += 37n) eq(walk(mem, g * GIB + 0x3fe00000n + 9n), g * GIB + 0x3fe00000n + 9n);
  eq(walk(mem, 512n * GIB), undefined);
});

Deno.test("without a low map only the ranges are mapped (the old behaviour, used when no directory area exists)", () => {
  const { bytes, info } = buildPageTables([{ gpa: 0n, size: 4n << 20n }], BASE, 0x10000n, false);
  eq(info.lowMap, "ranges");
  const mem: [bigint, Uint8Array][] = [[BASE, bytes]];
  eq(walk(mem, 0x100000n), 0x100000n);
  eq(walk(mem, 0x900000000n), undefined);
});
