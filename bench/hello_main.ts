/**
 * Row 7 stand-in while `kvmsh -c "run …"` is not wired: a plain Deno script that runs a flat
 * real-mode guest through mod.ts's runGuest, prints its console and exits with its
 * isa-debug-exit status (value << 1 | 1), like `kvmsh run guest.bin` and bench/c/hello.c.
 * @module
 */

import { openKvm, runGuest } from "../mod.ts";

const kvm = openKvm();
const vm = kvm.createVm();
const r = runGuest(vm, { image: Deno.args[0] });
Deno.stdout.writeSync(new TextEncoder().encode(r.console));
Deno.exit(r.exitCode?.status ?? 0);
