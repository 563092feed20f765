/**
 * Row 7 through mod.ts: a plain Deno script that runs a flat real-mode guest with runGuest,
 * prints its console and exits with its isa-debug-exit status (value << 1 | 1), like
 * `kvmsh run guest.bin` and bench/c/hello.c. `--no-interrupt` runs without the kick's Ctrl-C
 * handler (it once needed a Worker, ~20–30 ms a process; now it costs two sigaction calls).
 * @module
 */

import { openKvm, runGuest } from "../mod.ts";

const kvm = openKvm();
const vm = kvm.createVm();
const r = runGuest(vm, { image: Deno.args[0], interruptible: !Deno.args.includes("--no-interrupt") });
Deno.stdout.writeSync(new TextEncoder().encode(r.console));
Deno.exit(r.exitCode?.status ?? 0);
