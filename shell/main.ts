/**
 * kvmsh's command-line entry point.
 * @module
 */

import { parseArgs } from "node:util";
import { CAP, capName, describeCapValue, hostReport, KvmError, openKvm, resolveCap } from "../mod.ts";
import { formatHostReport, hostReportJson } from "./caps_report.ts";

function jsonReplacer(_k: string, v: unknown): unknown {
  return typeof v === "bigint" ? `0x${v.toString(16)}` : v;
}

function main(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { json: { type: "boolean" }, all: { type: "boolean" }, help: { type: "boolean", short: "h" } },
    allowPositionals: true,
  });
  const [cmd, ...rest] = positionals;
  if (values.help || !cmd) {
    console.log("usage: kvmsh caps [--json] [--all] [cap…]");
    return cmd || values.help ? 0 : 2;
  }
  if (cmd !== "caps") {
    console.error(`kvmsh: unknown command '${cmd}'`);
    return 2;
  }
  try {
    using kvm = openKvm();
    const caps = rest.length ? rest.map((t) => resolveCap(t) ?? -1) : Object.keys(CAP).map((k) => CAP[k]);
    if (caps.includes(-1)) {
      console.error(
        `kvmsh: unknown capability '${rest[caps.indexOf(-1)]}' (a name like GUEST_MEMFD_FLAGS, or a number)`,
      );
      return 2;
    }
    const report = hostReport(kvm, caps);
    if (values.json) console.log(JSON.stringify(hostReportJson(report), jsonReplacer, 2));
    else if (rest.length) {
      for (const c of report.caps) {
        console.log(
          `${capName(c.cap)} (${c.cap}): system ${c.system}, vm ${c.vm} ${
            describeCapValue(c.cap, typeof c.vm === "number" ? c.vm : 0)
          }`,
        );
      }
    } else console.log(formatHostReport(report, { all: values.all }));
    return 0;
  } catch (e) {
    if (e instanceof KvmError) {
      console.error(`kvmsh: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

Deno.exit(main(Deno.args));
