/**
 * Committed machine code as hex text (kvm/kick_code.ts, ffi/raw_syscall_lib.ts).
 * @module
 */

/** Bytes from hex text (a loop: at every start, a regex and a closure per byte cost ~0.2 ms more). */
export function fromHex(hex: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substring(2 * i, 2 * i + 2), 16);
  return out;
}
