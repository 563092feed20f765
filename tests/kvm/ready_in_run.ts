/**
 * For the Ctrl-C child processes: the guest says "ready" from INSIDE the run (an `out` to port
 * 0x80 whose handler prints it), so the parent's SIGINT always finds the run armed. Printed
 * before runGuest, a busy host could deliver the signal before the SIGINT handler was installed
 * and the default action killed the child (exit 130: seen under the load of parallel suites).
 * @module
 */

/** `out %al, $0x80` (the handler prints "ready"), then `jmp $`. */
export const READY_THEN_SPIN = "out %al, $0x80\n1: jmp 1b";

/** Port 0x80: prints "ready" once and lets the guest go on spinning. */
export const readyHandler = {
  ports: {
    0x80: () => {
      console.log("ready");
      return "continue" as const;
    },
  },
};
