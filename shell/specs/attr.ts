/**
 * The attr commands' table entries; their behaviour (commands/attr.ts) loads on first use.
 * @module
 */

import { words } from "../commands/complete_helpers.ts";
import type { Command } from "../commands/types.ts";

const load = () => import("../commands/attr.ts").then((m) => m.attrImpl);

export const KINDS = ["private", "shared"] as const;

/** attr commands. */
export const attrCommands: Command[] = [
  {
    name: "attr set",
    summary: "KVM_SET_MEMORY_ATTRIBUTES on the current VM (always sent; warns when KVM_CAP_MEMORY_ATTRIBUTES=0)",
    usage: "attr set private|shared <gpa> <size>",
    example: "attr set private 4G 2M",
    args: [{ name: "private|shared", complete: words(KINDS) }, { name: "gpa" }, { name: "size" }],
    load,
  },
  {
    name: "attr show",
    summary:
      "KVM_CAP_MEMORY_ATTRIBUTES of the current VM and every KVM_SET_MEMORY_ATTRIBUTES sent with the kernel's answer",
    usage: "attr show",
    example: "attr show",
    load,
  },
];
