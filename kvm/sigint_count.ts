/**
 * How many SIGINTs (Ctrl-C) the kick's handler has counted in this isolate, for long host-side
 * work to notice one between its chunks: a multi-GB `write` at the prompt stops at the next chunk
 * instead of running to its end. kick.ts gives the count once its handler exists (no import cycle:
 * kick.ts uses mapping.ts, which reads this). A SIGINT counts only while the handler is held or
 * armed; without it, Ctrl-C has its usual effect on the process.
 * @module
 */

let probe: (() => number) | undefined;

/** Set by kick.ts when it creates its handler. */
export function setSigintProbe(fn: () => number): void {
  probe = fn;
}

/** SIGINTs counted so far (0 before the kick's handler exists). */
export function sigintCount(): number {
  return probe?.() ?? 0;
}
