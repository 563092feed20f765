/**
 * `gmem …`: guest_memfd files — create, list, stat, mmap, punch, alloc, the plain file
 * syscalls (read/write/pread/pwrite/truncate, to see them refused) and close.
 * @module
 */

import { formatSize, GUEST_MEMFD_FLAGS, type GuestMemfd, hex, type Mapping } from "../../mod.ts";
import { big, bool, bytes, ident, int, str } from "../ts_literal.ts";
import { table } from "../output.ts";
import { flags, num, small, writeData } from "../values.ts";
import { flagList, objects } from "./complete_helpers.ts";
import type { Args, Command, Outcome } from "./types.ts";
import type { Session } from "../session.ts";

const G = { name: "gmem", complete: objects("gmem") };

function mapDesc(ctx: Session, m: Mapping): Record<string, unknown> {
  const named = [...ctx.maps.values()].find((x) => x.obj === m)?.name ?? null;
  return { name: named, ...m.describe() };
}

/** Everything `gmem stat` shows. */
export function gmemInfo(ctx: Session, name: string, g: GuestMemfd): Record<string, unknown> {
  const vmName = ctx.gmems.get(name)?.parent;
  const vm = vmName ? ctx.vms.get(vmName)?.obj : undefined;
  const bindings = (vm?.open ? vm.memslots : []).filter((s) => s.gmem === g).map((s) => ({
    slot: s.id,
    gpa: s.gpa,
    size: s.size,
    offset: s.region.guestMemfdOffset,
  }));
  return {
    name,
    vm: vmName,
    fd: g.fd,
    size: g.size,
    flags: g.flagNames,
    mappings: g.mappings.map((m) => mapDesc(ctx, m)),
    bindings,
  };
}

function createArgs(a: Args): { size: bigint; flags: bigint } {
  return { size: num(a.flags.size, "--size"), flags: flags(GUEST_MEMFD_FLAGS, a.flags.flags, "--flags") };
}

function flagsLit(f: bigint): string {
  return f === 0n ? "0n" : JSON.stringify(GUEST_MEMFD_FLAGS.format(f));
}

/** One page: what `gmem mmap` sends when --offset is at or past the end and no --length is given. */
const PAGE = 0x1000n;

/**
 * The mmap options as typed. Without --length the API maps size - offset; at or past the end that
 * would be ≤ 0, so one page is sent instead (the kernel's answer to a mapping past EOF is the
 * point) and `note` says so.
 */
function mmapOpts(a: Args, g: GuestMemfd): { offset?: bigint; length?: bigint; shared: boolean; note?: string } {
  const o: { offset?: bigint; length?: bigint; shared: boolean; note?: string } = {
    offset: a.flags.offset === undefined ? undefined : num(a.flags.offset, "--offset"),
    length: a.flags.length === undefined ? undefined : num(a.flags.length, "--length"),
    shared: a.flags.private !== true,
  };
  if (o.offset !== undefined && o.length === undefined && o.offset >= g.size) {
    o.length = PAGE;
    o.note = `warning: --offset ${hex(o.offset)} is at or past the end of ${a.pos[0]} (size ${
      hex(g.size)
    }) and no --length: mapping one page (${hex(PAGE)}) to show the kernel's answer`;
  }
  return o;
}

function mmapLit(o: { offset?: bigint; length?: bigint; shared: boolean }): string {
  const parts = [];
  if (o.offset !== undefined) parts.push(`offset: ${big(o.offset)}`);
  if (o.length !== undefined) parts.push(`length: ${big(o.length)}`);
  parts.push(`shared: ${bool(o.shared)}`);
  return `{ ${parts.join(", ")} }`;
}

function hexBytes(b: Uint8Array): string {
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join(" ");
}

function bytesOf(a: Args, from: number): Uint8Array {
  const d = writeData(a.pos.slice(from));
  if (d.kind === "fill") return new Uint8Array(Number(d.length > 1n << 20n ? 1n << 20n : d.length)).fill(d.value);
  return d.bytes;
}

const rangeArgs = [G, { name: "offset" }, { name: "length" }];

function g(ctx: Session, a: Args): { name: string; obj: GuestMemfd } {
  return ctx.gmem(a.pos[0]);
}

function readOutcome(b: Uint8Array): Outcome {
  return { lines: [`${b.length} bytes: ${hexBytes(b)}`], data: { length: b.length, bytes: b }, observed: b };
}

const checkBytes = (r: string, out: Outcome, claim: string) => [
  `kvmsh.expectBytes(${r}, unhex(${str(hexBytes(out.observed as Uint8Array).replace(/ /g, ""))}), ${str(claim)});`,
];

/** guest_memfd commands. */
export const gmemCommands: Command[] = [
  {
    name: "gmem create",
    summary: "KVM_CREATE_GUEST_MEMFD on the current VM (sent as typed: odd sizes and flags show the kernel's answer)",
    usage: "gmem create --size S [--flags mmap,init-shared]",
    example: "gmem create --size 2M --flags mmap,init-shared",
    flags: [
      { name: "size", value: "S", required: true, help: "size in bytes (4096, 0x1000, 4K, 2M, 1G)" },
      {
        name: "flags",
        value: "FLAGS",
        help: "GUEST_MEMFD_FLAG_* names or bits",
        complete: flagList(GUEST_MEMFD_FLAGS),
      },
    ],
    run(ctx, a) {
      const { size, flags } = createArgs(a);
      const vm = ctx.vm();
      const obj = vm.obj.createGuestMemfd(size, flags);
      const name = ctx.addGmem(obj, vm.name);
      return {
        lines: [`${name}: fd ${obj.fd}, size ${formatSize(size)}, flags ${obj.flagNames}, vm ${vm.name}`],
        data: { name, fd: obj.fd, size, flags: obj.flagNames, vm: vm.name },
        bind: name,
      };
    },
    record(a, ctx) {
      const { size, flags } = createArgs(a);
      return [{ expr: `${ident(ctx.vm().name)}.createGuestMemfd(${big(size)}, ${flagsLit(flags)})` }];
    },
  },
  {
    name: "gmem list",
    summary: "the open guest_memfds: fd, size, flags, mappings, memslot bindings",
    usage: "gmem list",
    example: "gmem list",
    run(ctx) {
      const rows = [...ctx.gmems.values()].filter((x) => x.live()).map((x) => gmemInfo(ctx, x.name, x.obj));
      const lines = rows.length
        ? table([
          ["name", "vm", "fd", "size", "flags", "mappings", "bound to"],
          ...rows.map((r) => [
            String(r.name),
            String(r.vm),
            String(r.fd),
            formatSize(r.size as bigint),
            String(r.flags),
            String((r.mappings as unknown[]).length),
            (r.bindings as { slot: number }[]).map((b) => `slot${b.slot}`).join(",") || "-",
          ]),
        ])
        : ["no guest_memfds (gmem create --size 2M --flags mmap,init-shared)"];
      return { lines, data: { gmems: rows } };
    },
  },
  {
    name: "gmem stat",
    summary: "fstat of a guest_memfd plus its mappings and memslot bindings",
    usage: "gmem stat <gmem>",
    example: "gmem stat gmem0",
    args: [G],
    run(ctx, a) {
      const { name, obj } = g(ctx, a);
      const st = obj.stat();
      const info = gmemInfo(ctx, name, obj);
      const lines = [
        `${name}: fd ${obj.fd}, vm ${info.vm}, size ${formatSize(obj.size)}, flags ${obj.flagNames}`,
        `  fstat: st_size ${formatSize(st.size)}, st_blocks ${st.blocks} (${
          formatSize(st.blocks * 512n)
        } allocated), st_blksize ${st.blksize}, ino ${st.ino}, mode 0${st.mode.toString(8)}`,
      ];
      for (const m of info.mappings as Record<string, unknown>[]) {
        lines.push(
          `  mapping ${m.name ?? "(implicit)"}: ${m.address} offset ${hex(m.offset as bigint)} size ${
            formatSize(m.size as bigint)
          } ${m.shared ? "shared" : "private"} ${m.prot}`,
        );
      }
      for (const b of info.bindings as Record<string, bigint>[]) {
        lines.push(
          `  bound: slot ${b.slot} gpa ${hex(b.gpa)} size ${formatSize(b.size)} at gmem offset ${hex(b.offset)}`,
        );
      }
      return { lines, data: { ...info, stat: st }, observed: st };
    },
    record(a, ctx) {
      return [{
        expr: `${ident(g(ctx, a).name)}.stat()`,
        check: (r, out, claim) => {
          const st = out.observed as { size: bigint; blocks: bigint };
          return [
            `kvmsh.expectEqual(${r}.size, ${big(st.size)}, ${str(`${claim}: st_size`)});`,
            `kvmsh.expectEqual(${r}.blocks, ${big(st.blocks)}, ${str(`${claim}: st_blocks`)});`,
          ];
        },
      }];
    },
  },
  {
    name: "gmem mmap",
    summary: "mmap(2) of a guest_memfd (ENODEV without the mmap flag, EINVAL for --private); names it mapN",
    usage: "gmem mmap <gmem> [--private] [--offset O] [--length L]",
    example: "gmem mmap gmem0 --length 4K",
    args: [G],
    flags: [
      { name: "private", help: "MAP_PRIVATE instead of MAP_SHARED" },
      { name: "offset", value: "O", help: "file offset" },
      {
        name: "length",
        value: "L",
        help: "length (default: size - offset; one page when --offset is at or past the end)",
      },
    ],
    run(ctx, a) {
      const { name, obj } = g(ctx, a);
      const { note, ...opts } = mmapOpts(a, obj);
      if (note) ctx.pendingWarnings.push(note);
      const m = obj.mmap(opts);
      const mname = ctx.addMap(m, name);
      return {
        lines: [
          `${mname}: ${hex(m.address)} size ${formatSize(m.size)} of ${name} at offset ${hex(m.info.offset)} (${
            m.info.shared ? "shared" : "private"
          } ${m.info.prot})`,
        ],
        data: { name: mname, ...m.describe() },
        bind: mname,
      };
    },
    record(a, ctx) {
      const x = g(ctx, a);
      return [{ expr: `${ident(x.name)}.mmap(${mmapLit(mmapOpts(a, x.obj))})` }];
    },
  },
  {
    name: "gmem punch",
    summary: "fallocate(PUNCH_HOLE|KEEP_SIZE): frees the range; it reads back as zeroes",
    usage: "gmem punch <gmem> <offset> <length>",
    example: "gmem punch gmem0 0 4K",
    args: rangeArgs,
    run(ctx, a) {
      const { name, obj } = g(ctx, a);
      const off = num(a.pos[1], "offset"), len = num(a.pos[2], "length");
      obj.punchHole(off, len);
      return {
        lines: [`${name}: punched ${hex(off)}+${formatSize(len)}`],
        data: { gmem: name, offset: off, length: len },
      };
    },
    record(a, ctx) {
      return [{
        expr: `${ident(g(ctx, a).name)}.punchHole(${big(num(a.pos[1], "offset"))}, ${big(num(a.pos[2], "length"))})`,
      }];
    },
  },
  {
    name: "gmem alloc",
    summary: "fallocate(KEEP_SIZE): allocates backing memory for the range (--no-keep-size sends mode 0)",
    usage: "gmem alloc <gmem> <offset> <length> [--no-keep-size]",
    example: "gmem alloc gmem0 0 2M",
    args: rangeArgs,
    flags: [{ name: "no-keep-size", help: "fallocate mode 0 (guest_memfd wants KEEP_SIZE: see the errno)" }],
    run(ctx, a) {
      const { name, obj } = g(ctx, a);
      const off = num(a.pos[1], "offset"), len = num(a.pos[2], "length");
      obj.allocate(off, len, a.flags["no-keep-size"] !== true);
      return {
        lines: [`${name}: allocated ${hex(off)}+${formatSize(len)}`],
        data: { gmem: name, offset: off, length: len },
      };
    },
    record(a, ctx) {
      return [{
        expr: `${ident(g(ctx, a).name)}.allocate(${big(num(a.pos[1], "offset"))}, ${big(num(a.pos[2], "length"))}, ${
          bool(a.flags["no-keep-size"] !== true)
        })`,
      }];
    },
  },
  {
    name: "gmem read",
    summary: "read(2) on the fd (guest_memfd refuses it: see the errno)",
    usage: "gmem read <gmem> <length>",
    example: "gmem read gmem0 16",
    args: [G, { name: "length" }],
    run(ctx, a) {
      return readOutcome(g(ctx, a).obj.read(small(a.pos[1], "length", 1 << 20)));
    },
    record(a, ctx) {
      return [{ expr: `${ident(g(ctx, a).name)}.read(${int(small(a.pos[1], "length", 1 << 20))})`, check: checkBytes }];
    },
  },
  {
    name: "gmem write",
    summary: "write(2) on the fd (guest_memfd refuses it)",
    usage: "gmem write <gmem> <bytes…|hex:…|str:…|fill:V[:len]>",
    example: "gmem write gmem0 0xaa 0xbb",
    args: [G, { name: "bytes", rest: true }],
    run(ctx, a) {
      const n = g(ctx, a).obj.write(bytesOf(a, 1));
      return { lines: [`wrote ${n} bytes`], data: { written: n } };
    },
    record(a, ctx) {
      return [{ expr: `${ident(g(ctx, a).name)}.write(${bytes(bytesOf(a, 1))})` }];
    },
  },
  {
    name: "gmem pread",
    summary: "pread(2) on the fd (guest_memfd refuses it)",
    usage: "gmem pread <gmem> <offset> <length>",
    example: "gmem pread gmem0 0 16",
    args: [G, { name: "offset" }, { name: "length" }],
    run(ctx, a) {
      return readOutcome(g(ctx, a).obj.pread(small(a.pos[2], "length", 1 << 20), num(a.pos[1], "offset")));
    },
    record(a, ctx) {
      return [{
        expr: `${ident(g(ctx, a).name)}.pread(${int(small(a.pos[2], "length", 1 << 20))}, ${
          big(num(a.pos[1], "offset"))
        })`,
        check: checkBytes,
      }];
    },
  },
  {
    name: "gmem pwrite",
    summary: "pwrite(2) on the fd (guest_memfd refuses it)",
    usage: "gmem pwrite <gmem> <offset> <bytes…>",
    example: "gmem pwrite gmem0 0 0xaa",
    args: [G, { name: "offset" }, { name: "bytes", rest: true }],
    run(ctx, a) {
      const n = g(ctx, a).obj.pwrite(bytesOf(a, 2), num(a.pos[1], "offset"));
      return { lines: [`wrote ${n} bytes`], data: { written: n } };
    },
    record(a, ctx) {
      return [{ expr: `${ident(g(ctx, a).name)}.pwrite(${bytes(bytesOf(a, 2))}, ${big(num(a.pos[1], "offset"))})` }];
    },
  },
  {
    name: "gmem truncate",
    summary: "ftruncate(2) on the fd (guest_memfd refuses size changes)",
    usage: "gmem truncate <gmem> <length>",
    example: "gmem truncate gmem0 4M",
    args: [G, { name: "length" }],
    run(ctx, a) {
      g(ctx, a).obj.truncate(num(a.pos[1], "length"));
      return { lines: ["truncated"], data: {} };
    },
    record(a, ctx) {
      return [{ expr: `${ident(g(ctx, a).name)}.truncate(${big(num(a.pos[1], "length"))})` }];
    },
  },
  {
    name: "gmem close",
    summary: "unmaps the guest_memfd's mappings and closes its fd",
    usage: "gmem close <gmem>",
    example: "gmem close gmem0",
    args: [G],
    run(ctx, a) {
      const { name, obj } = g(ctx, a);
      obj.close();
      return { lines: [`${name} closed`], data: { closed: name } };
    },
    record(a, ctx) {
      return [{ expr: `${ident(g(ctx, a).name)}.close()` }];
    },
  },
];
