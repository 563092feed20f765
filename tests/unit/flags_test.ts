/** FlagSet: parsing user input, formatting kernel answers (unknown bits as hex), errors. */

import { deepStrictEqual as eq, throws } from "node:assert/strict";
import { FlagSet, GUEST_MEMFD_FLAGS, MEMSLOT_FLAGS } from "../../mod.ts";

const F = new FlagSet("demo", { a: 1n, "b-c": 2n, d: 8n });

Deno.test("FlagSet.parse: names, separators, numbers, none", () => {
  eq(F.parse("a"), 1n);
  eq(F.parse("a,b-c"), 3n);
  eq(F.parse("a|d"), 9n);
  eq(F.parse("a + d"), 9n);
  eq(F.parse(" A , B_C "), 3n, "case and underscores are forgiven");
  eq(F.parse("0x10"), 16n, "raw numbers pass unchanged, known or not");
  eq(F.parse("a,0x40"), 0x41n);
  eq(F.parse("6"), 6n);
  eq(F.parse(""), 0n);
  eq(F.parse("none"), 0n);
  eq(F.parse("0"), 0n);
});

Deno.test("FlagSet.parse: an unknown name is a RangeError listing the known ones", () => {
  throws(() => F.parse("a,bogus"), (e: unknown) => {
    eq(e instanceof RangeError, true);
    eq((e as Error).message, "unknown demo flag 'bogus' (known: a, b-c, d)");
    return true;
  });
  throws(() => GUEST_MEMFD_FLAGS.parse("shared"), /unknown gmem flag 'shared' \(known: mmap, init-shared\)/);
});

Deno.test("FlagSet.format: names in declaration order, unknown bits as hex, 0 as empty", () => {
  eq(F.format(0n), "");
  eq(F.format(1n), "a");
  eq(F.format(0xbn), "a|b-c|d");
  eq(F.format(0x4n), "0x4");
  eq(F.format(0x1fdn), "a|d|0x1f4");
  eq(F.format(0x1f5n), "a|0x1f4");
  eq(GUEST_MEMFD_FLAGS.format(3n), "mmap|init-shared");
  eq(GUEST_MEMFD_FLAGS.format(1n << 63n | 1n), "mmap|0x8000000000000000");
  eq(MEMSLOT_FLAGS.format(MEMSLOT_FLAGS.parse("guest-memfd,readonly")), "readonly|guest-memfd");
  // A negative value is what its field gets: two's complement of the field's width.
  eq(GUEST_MEMFD_FLAGS.format(-1n), "mmap|init-shared|0xfffffffffffffffc");
  eq(MEMSLOT_FLAGS.format(-1n), "log-dirty|readonly|guest-memfd|0xfffffff8");
});

Deno.test("FlagSet: round trip, split, all, names", () => {
  for (let v = 0n; v < 32n; v++) eq(F.parse(F.format(v)), v);
  eq(F.split(0x13n), { names: ["a", "b-c"], unknown: 0x10n });
  eq(F.all, 11n);
  eq(F.names, ["a", "b-c", "d"]);
  eq(Object.isFrozen(F.bits), true);
});

Deno.test("FlagSet.parse: names of Object.prototype are unknown flags, not lookups", () => {
  const F = new FlagSet("gmem", { mmap: 1n });
  for (const name of ["constructor", "toString", "__proto__", "hasOwnProperty"]) {
    throws(() => F.parse(name), /unknown gmem flag/, name);
  }
});
