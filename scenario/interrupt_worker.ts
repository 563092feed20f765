/**
 * The runner's Ctrl-C listener on its own thread (see interrupt.ts): while the main thread is blocked
 * in a guest run it cannot see SIGINT, but this worker's event loop is free, so the flag is set at
 * once and a scenario's next line can report the interruption.
 * @module
 */

const self_ = self as unknown as {
  onmessage: (e: MessageEvent<{ sab: SharedArrayBuffer }>) => void;
  postMessage(m: unknown): void;
};

self_.onmessage = (e) => {
  const flag = new Int32Array(e.data.sab);
  Deno.addSignalListener("SIGINT", () => {
    Atomics.add(flag, 0, 1);
    self_.postMessage("sigint");
  });
  self_.postMessage("ready");
};
