/** Numbers as typed (parseU64) and as printed (formatSize, humanSize, hex). */

import { deepStrictEqual as eq, throws } from "node:assert/strict";
import { formatSize, hex, humanSize, parseU64 } from "../../mod.ts";

Deno.test("parseU64: decimal, hex, binary, suffixes, separators", () => {
  eq(parseU64("4096"), 4096n);
  eq(parseU64("0x1000"), 4096n);
  eq(parseU64("0X1000"), 4096n);
  eq(parseU64("0b101"), 5n);
  eq(parseU64("4K"), 4096n);
  eq(parseU64("4k"), 4096n);
  eq(parseU64("2M"), 2n << 20n);
  eq(parseU64("2MiB"), 2n << 20n);
  eq(parseU64("2MB"), 2n << 20n);
  eq(parseU64("1G"), 1n << 30n);
  eq(parseU64("1T"), 1n << 40n);
  eq(parseU64("0x10K"), 0x4000n);
  eq(parseU64("1_000"), 1000n);
  eq(parseU64(" 7 "), 7n);
  eq(parseU64("0xffffffffffffffff"), (1n << 64n) - 1n);
});

Deno.test("parseU64: bad input is a RangeError naming it", () => {
  for (const bad of ["", "abc", "-1", "1.5", "0x", "4X", "1Q", "2 M B"]) {
    throws(() => parseU64(bad), RangeError, bad);
  }
  throws(() => parseU64("zz"), /not a number: 'zz'/);
  throws(() => parseU64("0x10000000000000000"), /does not fit 64 bits/);
  throws(() => parseU64("16777216T"), /does not fit 64 bits/);
});

Deno.test("humanSize: a fraction that rounds away leaves no dangling point", () => {
  eq(humanSize(1025), "1 KiB");
  eq(humanSize((2n << 30n) - 1n), "2 GiB");
  eq(formatSize(0x401n), "0x401 (1 KiB)");
});

Deno.test("humanSize, hex and formatSize", () => {
  eq(humanSize(0), "0 B");
  eq(humanSize(100), "100 B");
  eq(humanSize(4096), "4 KiB");
  eq(humanSize(2n << 20n), "2 MiB");
  eq(humanSize(3n << 29n), "1.5 GiB");
  eq(humanSize(1n << 40n), "1 TiB");
  eq(humanSize(1536), "1.5 KiB");
  eq(hex(255), "0xff");
  eq(hex(1n << 32n), "0x100000000");
  eq(formatSize(2n << 20n), "0x200000 (2 MiB)");
  eq(formatSize(4096), "0x1000 (4 KiB)");
});
