/** The struct layout language: encode/decode round trips, widths, bounds. */

import { deepStrictEqual as eq, ok, throws } from "node:assert/strict";
import {
  decode,
  defineStruct,
  encode,
  layoutProblems,
  readScalar,
  type StructLayout,
  typeWidth,
  writeScalar,
} from "../../ffi/struct_codec.ts";
import * as STRUCTS from "../../ffi/structs.ts";
import {
  KVM_CREATE_GUEST_MEMFD_ARGS,
  KVM_MEMORY_ATTRIBUTES_ARGS,
  KVM_USERSPACE_MEMORY_REGION2,
} from "../../ffi/structs.ts";

const T = defineStruct("t", 24, {
  a: { offset: 0, type: "u8" },
  b: { offset: 2, type: "u16" },
  c: { offset: 4, type: "i32" },
  d: { offset: 8, type: "u64" },
  e: { offset: 16, type: "u32", count: 2 },
});

Deno.test("struct codec: encode/decode round trip, little-endian at the declared offsets", () => {
  const v = { a: 0xfe, b: 0xbeef, c: -2, d: 0x1122334455667788n, e: [1, 0xffffffff] };
  const bytes = encode(T, v);
  eq(bytes.length, 24);
  eq(decode(T, bytes), v);
  eq([...bytes.subarray(8, 16)], [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]);
  eq([...bytes.subarray(2, 4)], [0xef, 0xbe]);
  eq(bytes[1], 0, "padding stays zero");
});

Deno.test("struct codec: partial encode, numbers for u64, negatives in two's complement, base offset", () => {
  const buf = new Uint8Array(32);
  encode(T, { d: 5 }, buf, 8);
  eq(decode(T, buf, 8).d, 5n);
  eq(decode(T, encode(T, { d: -1n })).d, (1n << 64n) - 1n);
  eq(decode(T, encode(T, { e: [7] })).e, [7, 0]);
});

Deno.test("struct codec: a value its field cannot hold is a RangeError naming the field, never wrapped", () => {
  // From the signed minimum to the unsigned maximum: negatives go in two's complement, as a C cast.
  eq(decode(T, encode(T, { a: -1, b: 0xffff, c: 0xffffffff, e: [-1, 0xffffffff] })), {
    a: 0xff,
    b: 0xffff,
    c: -1,
    d: 0n,
    e: [0xffffffff, 0xffffffff],
  });
  throws(() => encode(T, { a: 256 }), /^RangeError: t\.a: 256 does not fit its u8$/);
  throws(() => encode(T, { b: -32769 }), /t\.b: -32769 does not fit its u16/);
  throws(() => encode(T, { d: 1n << 64n }), /t\.d: 18446744073709551616 does not fit its u64/);
  throws(() => encode(T, { d: -(1n << 63n) - 1n }), /does not fit its u64/);
  throws(() => encode(T, { e: [1, 2 ** 32] }), /t\.e\[1\]: 4294967296 does not fit its u32/);
  throws(() => encode(T, { c: 1.5 }), /t\.c: 1\.5 does not fit its i32/);
  // The slot that used to reach the kernel as slot 0.
  throws(() => encode(KVM_USERSPACE_MEMORY_REGION2, { slot: 2 ** 32 }), /kvm_userspace_memory_region2\.slot/);
});

Deno.test("struct codec: errors for unknown fields, too many elements, fields past the end", () => {
  throws(() => encode(T, { z: 1 } as never), /t has no field z/);
  throws(() => encode(T, { e: [1, 2, 3] }), /t\.e holds 2 elements/);
  eq(layoutProblems(defineStruct("bad", 4, { x: { offset: 0, type: "u64" }, y: { offset: 2, type: "u8" } })), [
    "bad.x runs past 4",
  ]);
  eq(layoutProblems(defineStruct("arr", 8, { a: { offset: 4, type: "u16", count: 3 } })), ["arr.a runs past 8"]);
});

Deno.test("struct layouts: no field of any declared layout runs past its end", () => {
  const layouts = (Object.values(STRUCTS) as unknown[]).filter((v): v is StructLayout =>
    typeof v === "object" && v !== null && "fields" in v && "size" in v
  );
  ok(layouts.length >= 25, `${layouts.length} layouts`);
  for (const l of layouts) eq(layoutProblems(l), [], l.name);
});

Deno.test("struct codec: scalars and widths", () => {
  const dv = new DataView(new ArrayBuffer(8));
  writeScalar(dv, 0, "i64", -5n);
  eq(readScalar(dv, 0, "i64"), -5n);
  writeScalar(dv, 0, "u32", -1);
  eq(readScalar(dv, 0, "u32"), 0xffffffff);
  eq(["u8", "u16", "u32", "i32", "u64", "i64"].map((t) => typeWidth(t as never)), [1, 2, 4, 4, 8, 8]);
});

Deno.test("struct codec: the kvm structs kvmsh sends round trip", () => {
  const region = {
    slot: 10,
    flags: 4,
    guest_phys_addr: 1n << 32n,
    memory_size: 2n << 20n,
    userspace_addr: 0x7f0000000000n,
    guest_memfd_offset: 0x1000n,
    guest_memfd: 7,
    pad1: 0,
    pad2: new Array(14).fill(0n),
  };
  eq(decode(KVM_USERSPACE_MEMORY_REGION2, encode(KVM_USERSPACE_MEMORY_REGION2, region)), region);
  const gm = decode(KVM_CREATE_GUEST_MEMFD_ARGS, encode(KVM_CREATE_GUEST_MEMFD_ARGS, { size: 4096n, flags: 3n }));
  eq([gm.size, gm.flags], [4096n, 3n]);
  const at = { address: 1n << 32n, size: 4096n, attributes: 8n, flags: 0n };
  eq(decode(KVM_MEMORY_ATTRIBUTES_ARGS, encode(KVM_MEMORY_ATTRIBUTES_ARGS, at)), at);
});
