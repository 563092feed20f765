/**
 * What kvmsh does with its command line, whichever way it was started: `./kvmsh` runs it from the
 * start-up bundle (bundle_main.ts) when the bundle is current, else from the sources (main.ts).
 * Only the shell itself is loaded through `loadShell`: `kvmsh scenario …`, `-h` and a usage error
 * load none of it.
 * @module
 */

import { parseArgv, type ShellArgv, USAGE } from "./argv.ts";

/**
 * The public API (the scenario runner), named apart from its import() and typed here, not by
 * `typeof import()`: Deno's module graph (and so `deno info`, the start-up bundle's list of
 * sources) follows either, and would count mod.ts and scenario/ as sources of the shell. Made
 * when wanted: the first URL a process parses costs ~0.2 ms.
 */
const modUrl = () => new URL("../mod.ts", import.meta.url).href;

/**
 * An SGR colour sequence (ESC [ … m, as output.ts writes them), built from a string: launch
 * imports nothing of the shell's (the bundle's entry chunk stays small).
 */
const SGR = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g");

/** The part of shell/cli.ts that launch needs. */
export interface ShellModule {
  runShell(args: ShellArgv): Promise<number>;
}

/** Runs kvmsh for `argv` (without the program name) and returns its exit status. */
export async function launch(argv: string[], loadShell: () => Promise<ShellModule>): Promise<number> {
  const args = parseArgv(argv);
  switch (args.kind) {
    case "help":
      console.log(USAGE);
      return 0;
    case "usage":
      console.error(args.message);
      return 2;
    case "scenario": {
      // Always the source mod.ts (scenario files import it: one copy of the library per process).
      const mod: { runScenarioCli(args: string[]): Promise<number> } = await import(modUrl());
      return await mod.runScenarioCli(args.rest);
    }
    case "shell": {
      let shell: ShellModule;
      try {
        shell = await loadShell();
      } catch (e) {
        // e.g. KVMSH_BUNDLE=1 without a bundle, or a module of the sources that does not load
        // (Deno's message has colour codes: not on a plain stderr).
        const text = (e as Error).message;
        console.error(`kvmsh: ${Deno.stderr.isTerminal() ? text : text.replace(SGR, "")}`);
        return 1;
      }
      return await shell.runShell(args);
    }
  }
}
