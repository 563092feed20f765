/**
 * `gmem …`: guest_memfd files — create, list, stat, mmap, punch, alloc, the plain file
 * syscalls (read/write/pread/pwrite/truncate, to see them refused) and close.
 * @module
 */

import { CAP, formatSize, gmemAbsence, GUEST_MEMFD_FLAGS, type GuestMemfd, hex, type Mapping } from "../../core.ts";
import { gmemCapWarnings } from "./gmem_caps.ts";
import { big, bool, bytes, ident, int, str } from "../ts_literal.ts";
import { hexBytes, table } from "../output.ts";
import { flags, num, small, writeData } from "../values.ts";
import type { Args, CommandImpls, Outcome } from "./types.ts";
import type { Session } from "../session.ts";
import { UsageError } from "../usage_error.ts";

function mapDesc(ctx: Session, m: Mapping): Record<string, unknown> {
  // A mapping no `gmem mmap` made (the API maps the file for reads, writes and slots) is implicit.
  const implicit = ![...ctx.maps.values()].some((x) => x.obj === m);
  return { name: m.name ?? null, ...m.describe(), implicit };
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
    ...(ctx.gmems.get(name)?.byRun ? { madeBy: "run" } : {}),
    vm: vmName,
    fd: g.fd,
    size: g.size,
    flags: g.flagNames,
    mappings: g.mappings.map((m) => mapDesc(ctx, m)),
    bindings,
  };
}

/**
 * What an empty `gmem list` says: how to make one, or — where the kernel has no guest_memfd
 * (KVM_CAP_GUEST_MEMFD 0 on /dev/kvm) — that `gmem create` will answer ENOTTY.
 */
function noGmemsLine(ctx: Session): string {
  let absent;
  try {
    absent = gmemAbsence({ system: ctx.kvm.checkExtension(CAP.GUEST_MEMFD) });
  } catch {
    // No KVM to ask: the plain line.
  }
  return absent
    ? `no guest_memfds: ${absent.reason}, so gmem create answers ENOTTY`
    : "no guest_memfds (gmem create --size 2M --flags mmap,init-shared)";
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

/** The most `fill:` sends through write(2)/pwrite(2) on the fd (a buffer of that size). */
const MAX_FILL_FD = 1n << 20n;

function bytesOf(a: Args, from: number): Uint8Array {
  const d = writeData(a.pos.slice(from));
  if (d.kind === "fill") {
    if (d.length > MAX_FILL_FD) throw new UsageError(`fill: at most ${hex(MAX_FILL_FD)} bytes through the fd`);
    return new Uint8Array(Number(d.length)).fill(d.value);
  }
  return d.bytes;
}

function g(ctx: Session, a: Args): { name: string; obj: GuestMemfd } {
  return ctx.gmem(a.pos[0]);
}

function readOutcome(b: Uint8Array): Outcome {
  return { lines: [`${b.length} bytes: ${hexBytes(b)}`], data: { length: b.length, bytes: b }, observed: b };
}

const checkBytes = (r: string, out: Outcome, claim: string) => [
  `kvmsh.expectBytes(${r}, unhex(${str(hexBytes(out.observed as Uint8Array, ""))}), ${str(claim)});`,
];

/** The gmem commands' behaviour (their table entries: specs/gmem.ts). */
export const gmemImpl: CommandImpls = {
  "gmem create": {
    run(ctx, a) {
      const { size, flags } = createArgs(a);
      const vm = ctx.vm();
      ctx.pendingWarnings.push(...gmemCapWarnings(vm.obj, vm.name, flags));
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
  "gmem list": {
    run(ctx) {
      const rows = [...ctx.gmems.values()].filter((x) => x.live()).map((x) => gmemInfo(ctx, x.name, x.obj));
      const lines = rows.length
        ? table([
          ["name", "vm", "fd", "size", "flags", "mappings", "bound to"],
          ...rows.map((r) => [
            r.madeBy ? `${r.name} (${r.madeBy})` : String(r.name),
            String(r.vm),
            String(r.fd),
            formatSize(r.size as bigint),
            String(r.flags),
            String((r.mappings as unknown[]).length),
            (r.bindings as { slot: number }[]).map((b) => `slot${b.slot}`).join(",") || "-",
          ]),
        ])
        : [noGmemsLine(ctx)];
      return { lines, data: { gmems: rows } };
    },
  },
  "gmem stat": {
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
          `  mapping ${m.name ?? ""}${m.implicit ? " (implicit)" : ""}: ${m.address} offset ${
            hex(m.offset as bigint)
          } size ${formatSize(m.size as bigint)} ${m.shared ? "shared" : "private"} ${m.prot}`,
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
  "gmem mmap": {
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
  "gmem punch": {
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
  "gmem alloc": {
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
  "gmem read": {
    run(ctx, a) {
      return readOutcome(g(ctx, a).obj.read(small(a.pos[1], "length", 1 << 20)));
    },
    record(a, ctx) {
      return [{ expr: `${ident(g(ctx, a).name)}.read(${int(small(a.pos[1], "length", 1 << 20))})`, check: checkBytes }];
    },
  },
  "gmem write": {
    run(ctx, a) {
      const n = g(ctx, a).obj.write(bytesOf(a, 1));
      return { lines: [`wrote ${n} bytes`], data: { written: n } };
    },
    record(a, ctx) {
      return [{ expr: `${ident(g(ctx, a).name)}.write(${bytes(bytesOf(a, 1))})` }];
    },
  },
  "gmem pread": {
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
  "gmem pwrite": {
    run(ctx, a) {
      const n = g(ctx, a).obj.pwrite(bytesOf(a, 2), num(a.pos[1], "offset"));
      return { lines: [`wrote ${n} bytes`], data: { written: n } };
    },
    record(a, ctx) {
      return [{ expr: `${ident(g(ctx, a).name)}.pwrite(${bytes(bytesOf(a, 2))}, ${big(num(a.pos[1], "offset"))})` }];
    },
  },
  "gmem truncate": {
    run(ctx, a) {
      g(ctx, a).obj.truncate(num(a.pos[1], "length"));
      return { lines: ["truncated"], data: {} };
    },
    record(a, ctx) {
      return [{ expr: `${ident(g(ctx, a).name)}.truncate(${big(num(a.pos[1], "length"))})` }];
    },
  },
  "gmem close": {
    run(ctx, a) {
      const { name, obj } = g(ctx, a);
      obj.close();
      return { lines: [`${name} closed`], data: { closed: name } };
    },
    record(a, ctx) {
      return [{ expr: `${ident(g(ctx, a).name)}.close()` }];
    },
  },
};
