/**
 * Ctrl-C for the scenario runner: a SIGINT listener in a Worker sets a shared flag that the main
 * thread reads synchronously (a scenario that just came back from a guest run the kick stopped
 * must report "interrupted", not a failure), and wakes the runner when it is waiting on a promise.
 * A second Ctrl-C ends the process with 130 at once.
 * @module
 */

import { kickStats } from "../mod.ts";

/** Watches for Ctrl-C during a run. */
export interface InterruptWatch {
  /** How many SIGINTs arrived (read synchronously). */
  count(): number;
  /** Resolves on the first SIGINT. */
  readonly signalled: Promise<void>;
  /** Resolves when the listener is in place (tests wait for it before sending SIGINT). */
  readonly ready: Promise<void>;
  /** Stops listening. */
  close(): void;
}

/** Starts watching for SIGINT. */
export function watchInterrupt(onSecond: () => void = () => Deno.exit(130)): InterruptWatch {
  const sab = new SharedArrayBuffer(4);
  const flag = new Int32Array(sab);
  const worker = new Worker(new URL("./interrupt_worker.ts", import.meta.url), { type: "module" });
  let fire!: () => void;
  let isReady!: () => void;
  const signalled = new Promise<void>((r) => (fire = r));
  const ready = new Promise<void>((r) => (isReady = r));
  let seen = 0;
  worker.onmessage = (e: MessageEvent<string>) => {
    if (e.data === "ready") return isReady();
    seen++;
    if (seen === 1) fire();
    else onSecond();
  };
  worker.postMessage({ sab });
  // A Ctrl-C that stops a guest run is seen by the kick's signal handler at once, while Deno hands
  // it to the worker's listener a moment later: a step that checks right after the run counts both.
  const kickBase = kickStats().sigints;
  return {
    count: () => Math.max(Atomics.load(flag, 0), kickStats().sigints - kickBase),
    signalled,
    ready,
    close: () => worker.terminate(),
  };
}
