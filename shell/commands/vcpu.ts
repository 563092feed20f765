/**
 * vCPU commands (wired to the vCPU API once it exists).
 * @module
 */

import type { Command } from "./types.ts";

/** vCPU commands. */
export const vcpuCommands: Command[] = [];
