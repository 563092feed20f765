/**
 * kvmsh's entry point in the start-up bundle: what `./kvmsh` runs while the bundle is current
 * (the wrapper checks; shell/start_bundle.ts explains). The same as main.ts, without the freshness
 * check or the bundler: the shell comes from the bundle's own cli.js.
 * @module
 */

import { launch } from "./launch.ts";

Deno.exit(await launch(Deno.args, () => import("./cli.ts")));
