/**
 * Guest memory from the host: `x/<n><unit><fmt>` (gdb/QEMU-monitor style dump), `write`, and
 * `touch` (a real access in a child process). Reads and writes take the API's fault-safe path,
 * so a page that would SIGBUS reports EFAULT and the shell lives on.
 * @module
 */

import { hex } from "../../core.ts";
import { big, bytes, ident, int, str } from "../ts_literal.ts";
import { type Address, address, byte, writeData } from "../values.ts";
import { UsageError } from "../usage_error.ts";
import { hexBytes } from "../output.ts";
import type { Args, CommandImpls, Outcome, Recorded } from "./types.ts";
import type { Session } from "../session.ts";

const UNITS: Record<string, number> = { b: 1, h: 2, w: 4, g: 8 };
const FORMATS = ["x", "d", "u", "c"] as const;
const MAX_DUMP = 1 << 16;

/** A parsed `x/` format: count, unit size in bytes, format letter. */
export interface DumpFormat {
  count: number;
  unit: number;
  format: typeof FORMATS[number];
}

/** Parses the part after `x/` (`16xb`, `4gx`, `8c`, empty = `16xb`). Count, unit and format in any order after the count. */
export function dumpFormat(suffix: string | undefined): DumpFormat {
  const s = suffix ?? "";
  const m = /^(\d*)([a-z]*)$/i.exec(s);
  if (!m) throw new UsageError(`bad x/ format '${s}' (x/<count><unit b|h|w|g><format x|d|u|c>, e.g. x/16xb)`);
  const count = m[1] ? Number(m[1]) : 16;
  let unit = 0;
  let format: DumpFormat["format"] | undefined;
  for (const c of m[2].toLowerCase()) {
    if (c in UNITS && !unit) unit = UNITS[c];
    else if ((FORMATS as readonly string[]).includes(c) && !format) format = c as DumpFormat["format"];
    else throw new UsageError(`bad x/ format '${s}': '${c}' (units b h w g, formats x d u c)`);
  }
  format ??= "x";
  unit ||= 1;
  if (count === 0 || count * unit > MAX_DUMP) {
    throw new UsageError(`x/: count must be 1..${MAX_DUMP / unit} for that unit`);
  }
  return { count, unit, format };
}

function fmtUnit(b: Uint8Array, i: number, f: DumpFormat): string {
  let v = 0n;
  for (let k = f.unit - 1; k >= 0; k--) v = (v << 8n) | BigInt(b[i + k]);
  const bits = BigInt(f.unit * 8);
  switch (f.format) {
    case "x":
      return `0x${v.toString(16).padStart(f.unit * 2, "0")}`;
    case "u":
      return v.toString();
    case "d":
      return (v >= 1n << (bits - 1n) ? v - (1n << bits) : v).toString();
    case "c": {
      const c = Number(v & 0xffn);
      return c >= 0x20 && c < 0x7f ? `'${String.fromCharCode(c)}'` : `\\x${c.toString(16).padStart(2, "0")}`;
    }
  }
}

/** The dump lines, 16 bytes (or 8 values) per line, like gdb's x. */
export function dumpLines(base: bigint, label: string, b: Uint8Array, f: DumpFormat): string[] {
  const perLine = f.format === "c" ? 16 : Math.max(1, 16 / f.unit);
  const lines: string[] = [];
  for (let i = 0; i < f.count; i += perLine) {
    const vals: string[] = [];
    for (let j = i; j < Math.min(f.count, i + perLine); j++) vals.push(fmtUnit(b, j * f.unit, f));
    lines.push(`${label}${hex(base + BigInt(i * f.unit))}: ${vals.join(" ")}`);
  }
  return lines;
}

/** The API call that reads/writes an address. */
interface Target {
  label: string;
  base: bigint;
  read(n: number): Uint8Array;
  write(b: Uint8Array): void;
  fill(len: bigint, v: number): void;
  readExpr(n: number): string;
  writeExpr(b: Uint8Array): string;
  fillExpr(len: bigint, v: number): string;
}

function target(ctx: Session, addr: Address): Target {
  if (addr.kind === "gpa") {
    const vm = ctx.vm();
    const v = ident(vm.name);
    return {
      label: `${vm.name} gpa `,
      base: addr.gpa,
      read: (n) => vm.obj.readGuest(addr.gpa, n),
      write: (b) => vm.obj.writeGuest(addr.gpa, b),
      fill: (len, x) => vm.obj.writeGuest(addr.gpa, new Uint8Array(Number(len)).fill(x)),
      readExpr: (n) => `${v}.readGuest(${big(addr.gpa)}, ${int(n)})`,
      writeExpr: (b) => `${v}.writeGuest(${big(addr.gpa)}, ${bytes(b)})`,
      fillExpr: (len, x) => `${v}.writeGuest(${big(addr.gpa)}, new Uint8Array(${int(Number(len))}).fill(${int(x)}))`,
    };
  }
  if (ctx.gmems.has(addr.name)) {
    const g = ctx.gmem(addr.name);
    const v = ident(g.name);
    return {
      label: `${g.name}:`,
      base: addr.offset,
      read: (n) => g.obj.readMem(addr.offset, n),
      write: (b) => g.obj.writeMem(addr.offset, b),
      fill: (len, x) => g.obj.fillMem(addr.offset, len, x),
      readExpr: (n) => `${v}.readMem(${big(addr.offset)}, ${int(n)})`,
      writeExpr: (b) => `${v}.writeMem(${big(addr.offset)}, ${bytes(b)})`,
      fillExpr: (len, x) => `${v}.fillMem(${big(addr.offset)}, ${big(len)}, ${int(x)})`,
    };
  }
  if (ctx.maps.has(addr.name)) {
    const m = ctx.map(addr.name);
    const v = ident(m.name);
    return {
      label: `${m.name}:`,
      base: addr.offset,
      read: (n) => m.obj.read(addr.offset, n),
      write: (b) => m.obj.write(addr.offset, b),
      fill: (len, x) => m.obj.fill(addr.offset, len, x),
      readExpr: (n) => `${v}.read(${big(addr.offset)}, ${int(n)})`,
      writeExpr: (b) => `${v}.write(${big(addr.offset)}, ${bytes(b)})`,
      fillExpr: (len, x) => `${v}.fill(${big(addr.offset)}, ${big(len)}, ${int(x)})`,
    };
  }
  throw new UsageError(`no object '${addr.name}' (use a GPA like 0x100000000, gmemN:offset or mapN:offset)`);
}

const MAX_FILL_GPA = 1n << 26n;

function writeParts(ctx: Session, a: Args) {
  const addr = address(a.pos[0]);
  const t = target(ctx, addr);
  const d = writeData(a.pos.slice(1));
  if (d.kind === "fill" && addr.kind === "gpa" && d.length > MAX_FILL_GPA) {
    throw new UsageError(`fill by GPA is limited to ${hex(MAX_FILL_GPA)} bytes (fill a gmemN:offset for more)`);
  }
  return { t, d };
}

/** The mem commands' behaviour (their table entries: specs/mem.ts). */
export const memImpl: CommandImpls = {
  "x": {
    run(ctx, a) {
      const f = dumpFormat(a.suffix);
      const t = target(ctx, address(a.pos[0]));
      const b = t.read(f.count * f.unit);
      return {
        lines: dumpLines(t.base, t.label, b, f),
        data: { address: a.pos[0], base: t.base, count: f.count, unit: f.unit, format: f.format, bytes: b },
        observed: b,
      };
    },
    record(a, ctx) {
      const f = dumpFormat(a.suffix);
      return [{
        expr: target(ctx, address(a.pos[0])).readExpr(f.count * f.unit),
        check: (
          r,
          out,
          claim,
        ) => [`kvmsh.expectBytes(${r}, unhex(${str(hexBytes(out.observed as Uint8Array, ""))}), ${str(claim)});`],
      }];
    },
  },
  "write": {
    run(ctx, a) {
      const { t, d } = writeParts(ctx, a);
      if (d.kind === "fill") t.fill(d.length, d.value);
      else t.write(d.bytes);
      const n = d.kind === "fill" ? d.length : BigInt(d.bytes.length);
      // The same address keys as x/'s result: as typed, and the offset or GPA it names.
      return {
        lines: [`wrote ${n} bytes at ${t.label}${hex(t.base)}`],
        data: { address: a.pos[0], base: t.base, length: n },
      };
    },
    record(a, ctx): Recorded[] {
      const { t, d } = writeParts(ctx, a);
      return [{ expr: d.kind === "fill" ? t.fillExpr(d.length, d.value) : t.writeExpr(d.bytes) }];
    },
  },
  "touch": {
    async run(ctx, a) {
      const { g, off, mode, value } = touchArgs(ctx, a);
      const r = await g.obj.touchInChild(off, mode, value);
      const what = r.signal
        ? `${r.signal}`
        : r.code === 0
        ? mode === "read" ? `read ${hex(r.value ?? 0)}` : "stored"
        : `child exited ${r.code}${r.stderr ? `: ${r.stderr.split("\n")[0]}` : ""}`;
      const out: Outcome = {
        lines: [`${g.name}:${hex(off)} ${mode} in a child: ${what}`],
        data: { ...r },
        observed: r,
      };
      return out;
    },
    record(a, ctx) {
      const { g, off, mode, value } = touchArgs(ctx, a);
      return [{
        expr: `${ident(g.name)}.touchInChild(${big(off)}, ${str(mode)}, ${int(value)})`,
        async: true,
        check: (r, out, claim) => {
          const o = out.observed as { signal: string | null; value?: number };
          return [
            `kvmsh.expectEqual(${r}.signal, ${o.signal === null ? "null" : str(o.signal)}, ${
              str(`${claim}: signal`)
            });`,
            ...(o.value !== undefined
              ? [`kvmsh.expectEqual(${r}.value, ${int(o.value)}, ${str(`${claim}: value`)});`]
              : []),
          ];
        },
      }];
    },
  },
};

function touchArgs(ctx: Session, a: Args) {
  const addr = address(a.pos[0]);
  if (addr.kind !== "obj") throw new UsageError("touch takes gmemN:offset");
  const g = ctx.gmem(addr.name); // "no guest_memfd 'gmem9'" for a name that is not one
  const mode: "read" | "write" = a.flags.write === true ? "write" : "read";
  if (a.flags.value !== undefined && mode !== "write") throw new UsageError("--value is the byte --write stores");
  const value = a.flags.value === undefined ? 0 : byte(String(a.flags.value), "--value");
  return { g, off: addr.offset, mode, value };
}
