/**
 * `vm create|list|close` and `use`.
 * @module
 */

import { formatSize, VM_TYPES } from "../../core.ts";
import { ident, int, str } from "../ts_literal.ts";
import { table } from "../output.ts";
import { small } from "../values.ts";
import { UsageError } from "../usage_error.ts";
import type { Args, CommandImpls } from "./types.ts";
import type { Session } from "../session.ts";

function vmType(a: Args): string | number {
  const t = a.flags.type;
  if (t === undefined) return "default";
  if (t === true) throw new UsageError("missing value for --type");
  if (Object.hasOwn(VM_TYPES, t)) return t;
  if (/^(0x)?[0-9a-f]+$/i.test(t)) return small(t, "--type");
  throw new UsageError(`unknown VM type '${t}' (known: ${Object.keys(VM_TYPES).join(", ")}, or a number)`);
}

/** Rows describing every open VM. */
export function vmRows(ctx: Session): Record<string, unknown>[] {
  return [...ctx.vms.values()].filter((v) => v.live()).map((v) => ({
    name: v.name,
    current: ctx.current === v.name,
    fd: v.obj.fd,
    type: v.obj.typeName,
    gmems: [...ctx.gmems.values()].filter((g) => g.live() && g.parent === v.name).map((g) => g.name),
    memslots: v.obj.memslots.map((s) => ({ slot: s.id, gpa: s.gpa, size: s.size })),
    vcpus: [...ctx.vcpus.values()].filter((c) => c.live() && c.parent === v.name).map((c) => c.name),
  }));
}

/** The vm commands' behaviour (their table entries: specs/vm.ts). */
export const vmImpl: CommandImpls = {
  "vm create": {
    run(ctx, a) {
      const vm = ctx.kvm.createVm(vmType(a));
      const name = ctx.addVm(vm);
      return {
        lines: [`${name}: fd ${vm.fd}, type ${vm.typeName} (current)`],
        data: { name, current: true, fd: vm.fd, type: vm.typeName }, // vm list's keys, in its order
        bind: name,
      };
    },
    record(a) {
      const t = vmType(a);
      return [{ expr: `kvm.createVm(${typeof t === "number" ? int(t) : str(t)})` }];
    },
  },
  "vm list": {
    run(ctx) {
      const rows = vmRows(ctx);
      const lines = rows.length
        ? table([
          ["", "name", "fd", "type", "gmems", "memslots", "vcpus"],
          ...rows.map((r) => [
            r.current ? "*" : "",
            String(r.name),
            String(r.fd),
            String(r.type),
            (r.gmems as string[]).join(",") || "-",
            (r.memslots as { slot: number; gpa: bigint; size: bigint }[]).map((s) =>
              `${s.slot}@0x${s.gpa.toString(16)}+${formatSize(s.size)}`
            ).join(" ") || "-",
            (r.vcpus as string[]).join(",") || "-",
          ]),
        ])
        : ["no VMs (vm create)"];
      return { lines, data: { vms: rows } };
    },
  },
  "vm close": {
    run(ctx, a) {
      const v = ctx.vm(a.pos[0]);
      v.obj.close();
      if (ctx.current === v.name) ctx.current = undefined;
      return { lines: [`${v.name} closed`], data: { closed: v.name } };
    },
    record(a, ctx) {
      return [{ expr: `${ident(ctx.vm(a.pos[0]).name)}.close()` }];
    },
  },
  "use": {
    run(ctx, a) {
      const v = ctx.vm(a.pos[0]);
      ctx.current = v.name;
      return { lines: [`current VM: ${v.name}`], data: { current: v.name } };
    },
  },
};
