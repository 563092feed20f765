/**
 * `slot set|del|list`: memslots through KVM_SET_USER_MEMORY_REGION2.
 * @module
 */

import { formatSize, hex, MEMSLOT_FLAGS, ownMemory } from "../../core.ts";
import { big, ident, int, str } from "../ts_literal.ts";
import { table } from "../output.ts";
import { choice, flags, num, small } from "../values.ts";
import { UsageError } from "../usage_error.ts";
import { USERSPACE } from "../specs/slot.ts";
import type { Args, CommandImpls } from "./types.ts";
import type { Session } from "../session.ts";

interface SlotArgs {
  slot: number;
  gpa: bigint;
  size: bigint;
  flags: bigint;
  gmem?: string;
  gmemOffset?: bigint;
  userspace?: typeof USERSPACE[number];
}

function slotArgs(a: Args, ctx: Session): SlotArgs {
  const s: SlotArgs = {
    slot: small(a.pos[0], "slot id"),
    gpa: num(a.flags.gpa, "--gpa"),
    size: num(a.flags.size, "--size"),
    flags: flags(MEMSLOT_FLAGS, a.flags.flags, "--flags"),
  };
  if (a.flags.gmem !== undefined) {
    // Another VM's gmem is sent as given: the kernel's EINVAL is the point.
    s.gmem = ctx.gmem(a.flags.gmem === true ? undefined : a.flags.gmem).name;
  }
  if (a.flags.offset !== undefined) {
    if (!s.gmem) throw new UsageError("--offset is the guest_memfd offset: it needs --gmem");
    s.gmemOffset = num(a.flags.offset, "--offset");
  }
  if (a.flags.anon === true && a.flags.userspace !== undefined) {
    throw new UsageError("--anon and --userspace are the same choice: give one");
  }
  if (a.flags.anon === true) s.userspace = "anon";
  if (a.flags.userspace !== undefined) {
    s.userspace = choice(a.flags.userspace === true ? undefined : a.flags.userspace, USERSPACE, "--userspace");
    if (s.userspace === "gmem" && !s.gmem) throw new UsageError("--userspace gmem needs --gmem");
  }
  return s;
}

function specLit(s: SlotArgs): string {
  const parts = [`slot: ${int(s.slot)}`, `gpa: ${big(s.gpa)}`, `size: ${big(s.size)}`, `flags: ${big(s.flags)}`];
  if (s.gmem) parts.push(`gmem: ${ident(s.gmem)}`);
  if (s.gmemOffset !== undefined) parts.push(`gmemOffset: ${big(s.gmemOffset)}`);
  if (s.userspace) parts.push(`userspace: ${str(s.userspace)}`);
  return `{ ${parts.join(", ")} }`;
}

/** Rows for `slot list` (current VM). */
export function slotRows(ctx: Session, vmName?: string): Record<string, unknown>[] {
  const vm = ctx.vm(vmName);
  const byRun = new Set(ownMemory(vm.obj).slots);
  return vm.obj.memslots.map((s) => ({
    ...s.describe(),
    gmem: ctx.gmemName(s.gmem),
    vm: vm.name,
    ...(byRun.has(s) ? { madeBy: "run" } : {}),
  }));
}

/** The slot commands' behaviour (their table entries: specs/slot.ts). */
export const slotImpl: CommandImpls = {
  "slot set": {
    run(ctx, a) {
      const s = slotArgs(a, ctx);
      const vm = ctx.vm();
      const slot = vm.obj.addMemslot({
        slot: s.slot,
        gpa: s.gpa,
        size: s.size,
        flags: s.flags,
        gmem: s.gmem ? ctx.gmem(s.gmem).obj : undefined,
        gmemOffset: s.gmemOffset,
        userspace: s.userspace,
      });
      if (s.size === 0n) {
        // KVM's delete: there is no slot to describe any more.
        return {
          lines: [`slot ${s.slot} deleted from ${vm.name} (size 0 deletes)`],
          data: { deleted: s.slot, vm: vm.name },
        };
      }
      const d = slot.describe();
      return {
        lines: [
          `slot ${s.slot} on ${vm.name}: gpa ${hex(s.gpa)} size ${
            formatSize(s.size)
          } flags ${d.flags} userspace ${d.userspace} (${d.userspace_addr})${
            s.gmem ? ` gmem ${s.gmem}+${hex(slot.region.guestMemfdOffset)}` : ""
          }`,
        ],
        data: { ...d, gmem: s.gmem ?? null, vm: vm.name },
      };
    },
    record(a, ctx) {
      return [{ expr: `${ident(ctx.vm().name)}.addMemslot(${specLit(slotArgs(a, ctx))})` }];
    },
  },
  "slot del": {
    run(ctx, a) {
      const id = small(a.pos[0], "slot id");
      const vm = ctx.vm();
      vm.obj.deleteMemslot(id);
      return { lines: [`slot ${id} deleted from ${vm.name}`], data: { deleted: id, vm: vm.name } };
    },
    record(a, ctx) {
      return [{ expr: `${ident(ctx.vm().name)}.deleteMemslot(${int(small(a.pos[0], "slot id"))})` }];
    },
  },
  "slot list": {
    run(ctx) {
      const rows = slotRows(ctx);
      const lines = rows.length
        ? table([
          ["slot", "gpa", "size", "flags", "userspace", "gmem"],
          ...rows.map((r) => [
            r.madeBy ? `${r.slot} (${r.madeBy})` : String(r.slot),
            hex(r.gpa as bigint),
            formatSize(r.size as bigint),
            String(r.flags),
            `${r.userspace} ${r.userspace_addr}`,
            r.gmem ? `${r.gmem}+${hex(r.gmem_offset as bigint)}` : "-",
          ]),
        ])
        : [`no memslots on ${ctx.vm().name}`];
      return { lines, data: { memslots: rows } };
    },
  },
};
