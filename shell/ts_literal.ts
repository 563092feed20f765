/**
 * TypeScript literals for the recorder. Everything that came from the user goes through one
 * of these, so nothing typed can become code: strings via JSON.stringify, numbers as bigint
 * or integer literals checked to be numbers, byte arrays as lists of integers.
 * @module
 */

/** A string literal (JSON.stringify escapes quotes, backslashes, newlines; backticks and `${` are inert in "…"). */
export function str(s: string): string {
  return JSON.stringify(String(s)).replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}

/** A bigint literal: `0x1000n`. */
export function big(v: bigint): string {
  if (typeof v !== "bigint") throw new TypeError("big() takes a bigint");
  return v < 0n ? `-0x${(-v).toString(16)}n` : `0x${v.toString(16)}n`;
}

/** An integer literal. */
export function int(v: number): string {
  if (!Number.isSafeInteger(v)) throw new TypeError(`not a safe integer: ${v}`);
  return String(v);
}

/** A boolean literal. */
export function bool(v: boolean): string {
  return v ? "true" : "false";
}

/** `new Uint8Array([…])` of bytes. */
export function bytes(b: Uint8Array): string {
  return `new Uint8Array([${[...b].map((x) => int(x)).join(", ")}])`;
}

/** A variable name the shell generated (vm0, gmem1): checked, never user text. */
export function ident(name: string): string {
  if (!/^[a-z]+[0-9]+$/.test(name)) throw new TypeError(`not a generated object name: ${name}`);
  return name;
}
