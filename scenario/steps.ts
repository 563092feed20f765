/**
 * The scenario verbs as free functions acting on the running scenario, so a scenario file (or a
 * REPL recording) reads as a list of calls: `step(…)`, `defer(…)`, `xfail(…)`.
 * @module
 */

import { currentContext } from "./registry.ts";
import type { ScenarioContext } from "./context.ts";

/**
 * A named step of the running scenario: its expectations print one KTAP line each (a step without
 * any prints one for itself); an unexpected error fails it with the errno and message.
 */
export function step(name: string, fn: (t: ScenarioContext) => unknown): Promise<void> {
  return currentContext().step(name, fn);
}

/** Cleanup that runs when the scenario ends, whatever happened (last registered first). */
export function defer(fn: () => unknown, name?: string): void {
  currentContext().defer(fn, name);
}

/**
 * A known host divergence: a failing expectation inside `fn` prints `# XFAIL reason; kernel said:
 * …`, does not fail the run, and ends the block (not the step: what follows it is checked as
 * usual; xfail then returns undefined); holding ones print `# XPASS`. `when: false` runs `fn`
 * plainly.
 */
export function xfail<T>(reason: string, fn: () => T, opts: { when?: boolean } = {}): T {
  return currentContext().xfail(reason, fn, opts);
}

/** Skips the rest of the step (or the scenario, before any result) with the reason. */
export function skip(reason: string): never {
  return currentContext().skip(reason);
}

/** Expects a kernel log record matching `re` during the scenario; a splat it matches does not fail it. */
export function expectKernelLog(re: RegExp, name?: string): void {
  currentContext().expectKernelLog(re, name);
}

/** A `#` diagnostic line printed before the next result. */
export function note(text: string): void {
  currentContext().note(text);
}
