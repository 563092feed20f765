/**
 * `caps [--all] [cap…]`: the host report, or chosen capabilities on the system fd and a VM.
 * @module
 */

import { CAP, capName, hostReport, resolveCap } from "../../core.ts";
import { formatHostReport, hostReportJson } from "../caps_report.ts";
import { UsageError } from "../usage_error.ts";
import { int, str } from "../ts_literal.ts";
import type { Args, CommandImpls } from "./types.ts";

function chosen(a: Args): number[] {
  return a.pos.map((t) => {
    const c = resolveCap(t);
    if (c === undefined) throw new UsageError(`unknown capability '${t}' (a name like GUEST_MEMFD_FLAGS, or a number)`);
    // A number past 2^53 would be sent rounded (another cap than the one typed): refused.
    if (!Number.isSafeInteger(c)) {
      throw new UsageError(`capability number '${t.trim()}' is larger than ${Number.MAX_SAFE_INTEGER}`);
    }
    return c;
  });
}

/** The caps command's behaviour (its table entry: specs/caps.ts). */
export const capsImpl: CommandImpls = {
  caps: {
    run(ctx, a) {
      const names = chosen(a);
      const caps = names.length ? names : Object.values(CAP);
      const report = hostReport(ctx.kvm, caps);
      const lines = names.length
        ? report.caps.map((c) =>
          // `decoded` is the VM's value and its meaning beside the system fd's ("3 (mmap|init-shared)",
          // "0 (no guest_memfd: …)"); an error text as it is.
          `${capName(c.cap)} (${c.cap}): system ${c.system}, vm ${typeof c.vm === "number" ? c.decoded : c.vm}`
        )
        : formatHostReport(report, { all: a.flags.all === true }).split("\n");
      return {
        lines,
        data: hostReportJson(report),
        observed: report.caps.map((c) => ({ cap: c.cap, system: c.system })),
      };
    },
    record(a) {
      return chosen(a).map((cap) => ({
        expr: `kvm.checkExtension(${int(cap)})`,
        check: (r, out) => {
          const row = (out.observed as { cap: number; system: number | string }[]).find((x) => x.cap === cap);
          return typeof row?.system === "number"
            ? [`kvmsh.expectEqual(${r}, ${int(row.system)}, ${str(`${capName(cap)} on /dev/kvm`)});`]
            : [];
        },
      }));
    },
  },
};
