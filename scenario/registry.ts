/**
 * `scenario(name, fn)` registers; the runner imports a file and runs what it registered. The
 * registry lives on globalThis so a file that reaches mod.ts by another path still registers
 * with the runner. A file run directly (`deno run file.ts`) runs its own scenarios.
 * @module
 */

import { AsyncLocalStorage } from "node:async_hooks";
import type { Requirement } from "./requires.ts";
import type { ScenarioContext } from "./context.ts";

/** The main module (and its top-level awaits) finished loading: scenarios declared later run at once. */
let loaded = false;
globalThis.addEventListener("load", () => (loaded = true), { once: true });

/** What `scenario()` takes besides its body. */
export interface ScenarioOptions {
  /** Requirements checked before the body: any the host lacks skips the whole scenario with the reason. */
  requires?: Requirement[];
  /**
   * The scenario's deadline in ms (default: the runner's `--timeout`, 60 s). A guest run still
   * going then is stopped (its own `timeoutMs` never outlasts it), and the step it was in fails
   * `deadline exceeded`.
   */
  timeoutMs?: number;
}

/** A registered scenario. */
export interface ScenarioEntry {
  name: string;
  fn: (t: ScenarioContext) => unknown;
  options: ScenarioOptions;
}

interface Registry {
  entries: ScenarioEntry[];
  /** Set while the runner imports files: they register, the runner runs. */
  runnerActive: boolean;
  /** A run started by a file executed directly. */
  autoRun: boolean;
  current?: ScenarioContext;
  /**
   * The scenario each body's own async work belongs to: a body abandoned at its deadline may go
   * on, and its late expectations must reach its own (ended) scenario, never the next one.
   */
  owner: AsyncLocalStorage<ScenarioContext>;
}

const KEY = Symbol.for("kvmsh.scenario.registry");

/** The process-wide registry. */
export function registry(): Registry {
  const g = globalThis as unknown as Record<symbol, Registry | undefined>;
  return (g[KEY] ??= { entries: [], runnerActive: false, autoRun: false, owner: new AsyncLocalStorage() });
}

/** Called when a file is executed directly: set by cli.ts (avoids an import cycle). */
let autoRunner: ((entries: ScenarioEntry[]) => Promise<number>) | undefined;

/** Installs what runs scenarios of a file executed directly. */
export function setAutoRunner(fn: (entries: ScenarioEntry[]) => Promise<number>): void {
  autoRunner = fn;
}

/**
 * Declares a scenario: a named body of steps and expectations that the runner prints as one KTAP
 * subtest.
 *
 * ```ts
 * scenario("gmem rejects unaligned sizes", async (t) => {
 *   const vm = t.vm();
 *   expectErrno("EINVAL", () => vm.createGuestMemfd(1n));
 * });
 * ```
 */
export function scenario(
  name: string,
  fn: (t: ScenarioContext) => unknown,
  options: ScenarioOptions = {},
): void {
  const r = registry();
  r.entries.push({ name, fn, options });
  if (!r.runnerActive && !r.autoRun && autoRunner) {
    r.autoRun = true;
    const run = autoRunner;
    // After the whole file loaded, top-level awaits included ("load" fires then; a timer would
    // fire during the first top-level await and lose the scenarios declared after it).
    const go = async () => {
      const entries = r.entries.splice(0);
      Deno.exit(await run(entries));
    };
    if (loaded) setTimeout(go, 0);
    else globalThis.addEventListener("load", go, { once: true });
  }
}

/** The scenario running now; expectations called outside one throw. */
export function currentContext(): ScenarioContext {
  const r = registry();
  const c = r.owner.getStore() ?? r.current;
  if (!c) throw new Error("expectations and steps run inside scenario(name, fn)");
  return c;
}
