/**
 * Entry of `deno task scenario <files>` (the same runner as `kvmsh scenario`).
 * @module
 */

import { runScenarioCli } from "./cli.ts";

Deno.exit(await runScenarioCli(Deno.args));
