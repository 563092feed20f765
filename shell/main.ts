/**
 * kvmsh's entry point from the sources: `./kvmsh` runs it when the start-up bundle is not current
 * (and `deno task shell` always). It runs the shell from the bundle when start_bundle.ts finds or
 * builds one that matches the sources, else from the sources; launch.ts does the rest.
 * @module
 */

import { launch, type ShellModule } from "./launch.ts";
import { shellEntry } from "./start_bundle.ts";

function loadShell(): Promise<ShellModule> {
  const env = Deno.env.get("KVMSH_BUNDLE");
  const mode = env === "0" ? "off" : env === "1" ? "require" : "auto";
  // Throws for KVMSH_BUNDLE=1 without a bundle (launch says so).
  const entry = shellEntry(decodeURIComponent(new URL("..", import.meta.url).pathname).replace(/\/$/, ""), mode);
  if (Deno.env.get("KVMSH_BUNDLE_REPORT")) {
    console.error(`kvmsh: shell from ${entry.from}${entry.reason ? ` (${entry.reason})` : ""}: ${entry.url}`);
  }
  return import(entry.url);
}

Deno.exit(await launch(Deno.args, loadShell));
