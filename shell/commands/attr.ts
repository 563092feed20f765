/**
 * `attr set private|shared <gpa> <size>` and `attr show`: KVM_SET_MEMORY_ATTRIBUTES, always
 * sent so the kernel's answer shows (ENOTTY where the VM type has no memory attributes).
 * @module
 */

import { type AttributeRecord, CAP, formatSize, hex, MEMORY_ATTRIBUTES } from "../../core.ts";
import { big, ident } from "../ts_literal.ts";
import { table } from "../output.ts";
import { choice, num } from "../values.ts";
import { KINDS } from "../specs/attr.ts";
import type { Args, CommandImpls } from "./types.ts";

/**
 * One KVM_SET_MEMORY_ATTRIBUTES as `--json` gives it: `attr set`'s result and each entry of
 * `attr show`'s log have the same keys (attributes by name, as the text says them, and the bits).
 */
function attrEntry(r: AttributeRecord): Record<string, unknown> {
  return { ...r, attributes: MEMORY_ATTRIBUTES.format(r.attributes) || "shared", attributeBits: r.attributes };
}

function attrArgs(a: Args) {
  return { kind: choice(a.pos[0], KINDS, "attribute"), gpa: num(a.pos[1], "gpa"), size: num(a.pos[2], "size") };
}

/** The attr commands' behaviour (their table entries: specs/attr.ts). */
export const attrImpl: CommandImpls = {
  "attr set": {
    run(ctx, a) {
      const { kind, gpa, size } = attrArgs(a);
      const vm = ctx.vm();
      const cap = vm.obj.checkExtension(CAP.MEMORY_ATTRIBUTES);
      const warnings = (BigInt(cap) & MEMORY_ATTRIBUTES.bits.private) === 0n
        ? [
          `warning: KVM_CAP_MEMORY_ATTRIBUTES=${cap} on ${vm.name} (${vm.obj.typeName} VM): the kernel will likely refuse; sending anyway`,
        ]
        : [];
      ctx.pendingWarnings.push(...warnings);
      if (kind === "private") vm.obj.setPrivate(gpa, size);
      else vm.obj.setShared(gpa, size);
      return {
        lines: [`${vm.name}: ${hex(gpa)}+${formatSize(size)} is ${kind}`],
        data: {
          vm: vm.name,
          ...attrEntry({
            gpa,
            size,
            attributes: kind === "private" ? MEMORY_ATTRIBUTES.bits.private : 0n,
            result: "ok",
          }),
        },
      };
    },
    record(a, ctx) {
      const { kind, gpa, size } = attrArgs(a);
      const vm = ident(ctx.vm().name);
      return [{ expr: `${vm}.${kind === "private" ? "setPrivate" : "setShared"}(${big(gpa)}, ${big(size)})` }];
    },
  },
  "attr show": {
    run(ctx) {
      const vm = ctx.vm();
      const cap = vm.obj.checkExtension(CAP.MEMORY_ATTRIBUTES);
      const log = vm.obj.attributeLog;
      const lines = [
        `${vm.name}: KVM_CAP_MEMORY_ATTRIBUTES = ${cap} (${MEMORY_ATTRIBUTES.format(BigInt(cap)) || "none"})`,
        ...(log.length
          ? table([
            ["gpa", "size", "attributes", "answer"],
            ...log.map((r) => [
              hex(r.gpa),
              formatSize(r.size),
              MEMORY_ATTRIBUTES.format(r.attributes) || "shared",
              r.result,
            ]),
          ])
          : ["no KVM_SET_MEMORY_ATTRIBUTES sent yet"]),
      ];
      return { lines, data: { vm: vm.name, capMemoryAttributes: cap, log: log.map(attrEntry) } };
    },
  },
};
