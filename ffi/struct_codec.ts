/**
 * A tiny struct layout language: each layout names its C struct, its size and every field's
 * offset and type, once. Codecs read and write little-endian bytes from those layouts, so an
 * offset is never written twice (ioctl numbers take their sizes from here too).
 * @module
 */

/** A scalar C type. `u64`/`i64` read as bigint, the rest as number. */
export type ScalarType = "u8" | "u16" | "u32" | "i32" | "u64" | "i64";

/** One field: byte offset, type and, for arrays, the element count. */
export interface FieldSpec {
  readonly offset: number;
  readonly type: ScalarType;
  readonly count?: number;
}

/** A C struct's byte layout. */
export interface StructLayout<F extends Record<string, FieldSpec> = Record<string, FieldSpec>> {
  readonly name: string;
  readonly size: number;
  readonly fields: F;
}

/** The JS value of one field: bigint for 64-bit scalars, number otherwise, arrays for counted fields. */
export type FieldValue<S extends FieldSpec> = S["count"] extends number
  ? (S["type"] extends "u64" | "i64" ? bigint[] : number[])
  : (S["type"] extends "u64" | "i64" ? bigint : number);

/** Decoded struct: one property per field. */
export type Decoded<F extends Record<string, FieldSpec>> = { [K in keyof F]: FieldValue<F[K]> };

/** Input to an encoder: any subset of the fields; numbers are accepted for 64-bit fields. */
export type Encodable<F extends Record<string, FieldSpec>> = {
  [K in keyof F]?: F[K]["count"] extends number ? ArrayLike<number | bigint> : number | bigint;
};

const WIDTH: Record<ScalarType, number> = { u8: 1, u16: 2, u32: 4, i32: 4, u64: 8, i64: 8 };

/** The byte width of a scalar type. */
export function typeWidth(t: ScalarType): number {
  return WIDTH[t];
}

/**
 * Declares a layout. Nothing is checked or frozen here: ffi/structs.ts declares ~30 layouts at
 * every start, and the checks cost ~0.5 ms of it; {@link layoutProblems} is what the unit tests
 * run over every declared layout (types keep the layouts read-only for callers).
 */
export function defineStruct<F extends Record<string, FieldSpec>>(
  name: string,
  size: number,
  fields: F,
): StructLayout<F> {
  return { name, size, fields };
}

/** What is wrong with a layout: fields that run past its end (unions overlap by design). */
export function layoutProblems(layout: StructLayout): string[] {
  return Object.entries(layout.fields)
    .filter(([, f]) => f.offset + WIDTH[f.type] * (f.count ?? 1) > layout.size)
    .map(([k]) => `${layout.name}.${k} runs past ${layout.size}`);
}

/** Reads one scalar at `off`. */
export function readScalar(dv: DataView, off: number, t: ScalarType): number | bigint {
  switch (t) {
    case "u8":
      return dv.getUint8(off);
    case "u16":
      return dv.getUint16(off, true);
    case "u32":
      return dv.getUint32(off, true);
    case "i32":
      return dv.getInt32(off, true);
    case "u64":
      return dv.getBigUint64(off, true);
    case "i64":
      return dv.getBigInt64(off, true);
  }
}

/**
 * Whether `v` can be written as a `t`: an integer from the signed type's minimum to the unsigned
 * type's maximum (a negative value is written in two's complement, as a C cast would).
 */
export function fitsScalar(t: ScalarType, v: number | bigint): boolean {
  if (typeof v === "number" && !Number.isInteger(v)) return false;
  const bits = BigInt(WIDTH[t] * 8);
  const b = BigInt(v);
  return b >= -(1n << (bits - 1n)) && b < 1n << bits;
}

/** Writes one scalar at `off` (numbers accepted for 64-bit types; negative values in two's complement). */
export function writeScalar(dv: DataView, off: number, t: ScalarType, v: number | bigint): void {
  switch (t) {
    case "u8":
      return dv.setUint8(off, Number(v));
    case "u16":
      return dv.setUint16(off, Number(v), true);
    case "u32":
      return dv.setUint32(off, Number(BigInt.asUintN(32, BigInt(v))), true);
    case "i32":
      return dv.setInt32(off, Number(v), true);
    case "u64":
      return dv.setBigUint64(off, BigInt.asUintN(64, BigInt(v)), true);
    case "i64":
      return dv.setBigInt64(off, BigInt.asIntN(64, BigInt(v)), true);
  }
}

/** Encodes `values` into `into` (or a fresh zeroed buffer of the struct's size). */
export function encode<F extends Record<string, FieldSpec>>(
  layout: StructLayout<F>,
  values: Encodable<F>,
  into: Uint8Array<ArrayBuffer> = new Uint8Array(layout.size),
  base = 0,
): Uint8Array<ArrayBuffer> {
  const dv = new DataView(into.buffer, into.byteOffset, into.byteLength);
  for (const [k, v] of Object.entries(values) as [string, unknown][]) {
    const f = layout.fields[k];
    if (!f) throw new Error(`${layout.name} has no field ${k}`);
    if (v === undefined) continue;
    // A value the field cannot hold is refused, not wrapped: the kernel would get another number
    // than the one kvmsh shows and records (slot 2^32 was sent as slot 0).
    const check = (x: number | bigint, at: string) => {
      if (!fitsScalar(f.type, x)) throw new RangeError(`${layout.name}.${at}: ${x} does not fit its ${f.type}`);
    };
    if (f.count !== undefined) {
      const arr = v as ArrayLike<number | bigint>;
      if (arr.length > f.count) throw new RangeError(`${layout.name}.${k} holds ${f.count} elements`);
      for (let i = 0; i < arr.length; i++) {
        check(arr[i], `${k}[${i}]`);
        writeScalar(dv, base + f.offset + i * WIDTH[f.type], f.type, arr[i]);
      }
    } else {
      check(v as number | bigint, k);
      writeScalar(dv, base + f.offset, f.type, v as number | bigint);
    }
  }
  return into;
}

/** Decodes every field of `layout` from `bytes` at `base`. */
export function decode<F extends Record<string, FieldSpec>>(
  layout: StructLayout<F>,
  bytes: Uint8Array,
  base = 0,
): Decoded<F> {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Record<string, unknown> = {};
  for (const [k, f] of Object.entries(layout.fields)) {
    if (f.count !== undefined) {
      const arr = [];
      for (let i = 0; i < f.count; i++) arr.push(readScalar(dv, base + f.offset + i * WIDTH[f.type], f.type));
      out[k] = arr;
    } else {
      out[k] = readScalar(dv, base + f.offset, f.type);
    }
  }
  return out as Decoded<F>;
}
