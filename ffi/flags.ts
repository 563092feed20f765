/**
 * Named bit sets: the one place a flag's name and bit live, used to parse user input
 * (`mmap,init-shared`), to format kernel answers (`mmap|init-shared`) and for completion.
 * @module
 */

/** A set of named bits. Unknown bits are kept and printed as hex, never dropped. */
export class FlagSet {
  /** Bit name → value, in declaration order. */
  readonly bits: Readonly<Record<string, bigint>>;

  /**
   * @param kind what the flags are for, used in error messages (`gmem`, `memslot`).
   * @param bits name → bit value.
   * @param width the field's width in bits: a negative value formats as the two's complement the
   *   kernel gets (a C cast), not as `0x-4`.
   */
  constructor(readonly kind: string, bits: Record<string, bigint>, readonly width = 64) {
    this.bits = Object.freeze({ ...bits });
  }

  /** The names, in declaration order. */
  get names(): string[] {
    return Object.keys(this.bits);
  }

  /** Every named bit or'ed together. */
  get all(): bigint {
    return Object.values(this.bits).reduce((a, b) => a | b, 0n);
  }

  /**
   * Parses `a,b`, `a|b`, a number (`0x4`, `6`) or a mix (`mmap,0x8`); empty or `none` is 0.
   * Raw numbers pass unchanged so a user can send bits the kernel does not know.
   * @throws {RangeError} naming the unknown flag and the known ones.
   */
  parse(text: string): bigint {
    let v = 0n;
    for (const part of text.split(/[,|+]/).map((p) => p.trim()).filter(Boolean)) {
      if (part === "none" || part === "0") continue;
      if (/^(0x[0-9a-f]+|\d+)$/i.test(part)) {
        v |= BigInt(part);
        continue;
      }
      const key = part.toLowerCase().replace(/_/g, "-");
      const bit = Object.hasOwn(this.bits, key) ? this.bits[key] : undefined; // not `constructor` & co
      if (bit === undefined) {
        throw new RangeError(`unknown ${this.kind} flag '${part}' (known: ${this.names.join(", ")})`);
      }
      v |= bit;
    }
    return v;
  }

  /** Formats bits as `a|b|0x40`; 0 gives the empty string. */
  format(value: bigint): string {
    if (value < 0n) value = BigInt.asUintN(this.width, value);
    const out: string[] = [];
    let rest = value;
    for (const [name, bit] of Object.entries(this.bits)) {
      if (bit !== 0n && (value & bit) === bit) {
        out.push(name);
        rest &= ~bit;
      }
    }
    if (rest !== 0n) out.push(`0x${rest.toString(16)}`);
    return out.join("|");
  }

  /** The names of the set bits, and the leftover unknown bits. */
  split(value: bigint): { names: string[]; unknown: bigint } {
    const names = Object.entries(this.bits).filter(([, b]) => b !== 0n && (value & b) === b).map(([n]) => n);
    return { names, unknown: value & ~this.all };
  }
}
