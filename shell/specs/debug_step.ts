/**
 * The debug_step commands' table entries; their behaviour (commands/debug_step.ts) loads on first use.
 * @module
 */

import { objects } from "../commands/complete_helpers.ts";
import type { Command } from "../commands/types.ts";

const load = () => import("../commands/debug_step.ts").then((m) => m.debugImpl);

const VCPU_FLAG = {
  name: "vcpu",
  value: "VCPU",
  help: "the vCPU (default: the one the last run/step used, else the VM's first)",
  complete: objects("vcpu"),
};
const TIMEOUT_FLAG = {
  name: "timeout",
  value: "T",
  help: "stop after T (5s, 500ms); default 5s; 0 or none: no timeout (Ctrl-C stops)",
};

/** debug_step commands. */
export const debugCommands: Command[] = [
  {
    name: "step",
    summary: "single-steps n instructions (KVM_SET_GUEST_DEBUG) from where the vCPU stopped; shows RIP and its bytes",
    usage: "step [n] [--vcpu vcpuN] [--timeout 5s]",
    example: "step 3",
    args: [{ name: "n", optional: true }],
    flags: [VCPU_FLAG, TIMEOUT_FLAG],
    load,
  },
  {
    name: "continue",
    summary: "resumes the vCPU from where it stopped (single-step off) until the next stop; Ctrl-C stops it",
    usage: "continue [--timeout 5s] [--vcpu vcpuN]",
    example: "continue --timeout 1s",
    flags: [TIMEOUT_FLAG, VCPU_FLAG],
    load,
  },
];
