/**
 * kvmsh's entry point. Reads kvmsh's own options (argv.ts), then runs the shell (cli.ts) from the
 * start-up bundle when it is current (start_bundle.ts), else from the sources; `kvmsh scenario
 * <files…>` hands over to the scenario runner (mod.ts, always from the sources).
 * @module
 */

import { parseArgv, USAGE } from "./argv.ts";
import { shellEntry } from "./start_bundle.ts";

async function main(): Promise<number> {
  const args = parseArgv(Deno.args);
  switch (args.kind) {
    case "help":
      console.log(USAGE);
      return 0;
    case "usage":
      console.error(args.message);
      return 2;
    case "scenario": {
      // Specifiers built at run time: Deno reads a statically named import() target (and its
      // graph) at start even when it is never imported.
      const mod: typeof import("../mod.ts") = await import(new URL("../mod.ts", import.meta.url).href);
      return await mod.runScenarioCli(args.rest);
    }
    case "shell": {
      const env = Deno.env.get("KVMSH_BUNDLE");
      const mode = env === "0" ? "off" : env === "1" ? "require" : "auto";
      let entry;
      try {
        entry = shellEntry(decodeURIComponent(new URL("..", import.meta.url).pathname).replace(/\/$/, ""), mode);
      } catch (e) {
        console.error(`kvmsh: ${(e as Error).message}`); // KVMSH_BUNDLE=1 without a bundle
        return 1;
      }
      if (Deno.env.get("KVMSH_BUNDLE_REPORT")) {
        console.error(`kvmsh: shell from ${entry.from}${entry.reason ? ` (${entry.reason})` : ""}: ${entry.url}`);
      }
      const cli: typeof import("./cli.ts") = await import(entry.url);
      return await cli.runShell(args);
    }
  }
}

Deno.exit(await main());
