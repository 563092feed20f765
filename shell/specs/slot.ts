/**
 * The slot commands' table entries; their behaviour (commands/slot.ts) loads on first use.
 * @module
 */

import { MEMSLOT_FLAGS } from "../../core.ts";
import { flagList, objects, words } from "../commands/complete_helpers.ts";
import type { Command } from "../commands/types.ts";

const load = () => import("../commands/slot.ts").then((m) => m.slotImpl);

export const USERSPACE = ["none", "anon", "gmem"] as const;

/** slot commands. */
export const slotCommands: Command[] = [
  {
    name: "slot set",
    summary: "KVM_SET_USER_MEMORY_REGION2: binds a GPA range to host memory and/or a guest_memfd range",
    usage:
      "slot set <id> --gpa A --size S [--gmem <g> [--offset O]] [--anon | --userspace none|anon|gmem] [--flags readonly,log-dirty]",
    example: "slot set 1 --gpa 4G --size 2M --gmem gmem0",
    args: [{ name: "id" }],
    flags: [
      { name: "gpa", value: "A", required: true, help: "guest physical address" },
      { name: "size", value: "S", required: true, help: "size (0 deletes)" },
      { name: "gmem", value: "G", help: "guest_memfd to bind", complete: objects("gmem") },
      { name: "offset", value: "O", help: "offset in the guest_memfd" },
      { name: "anon", help: "userspace_addr: fresh anonymous memory (same as --userspace anon)" },
      {
        name: "userspace",
        value: "U",
        help:
          "userspace_addr: none (0), anon, or gmem (the gmem's mapping). Default: gmem if mmap-able, else none; anon without --gmem",
        complete: words(USERSPACE),
      },
      { name: "flags", value: "FLAGS", help: "KVM_MEM_* names or bits", complete: flagList(MEMSLOT_FLAGS) },
    ],
    load,
  },
  {
    name: "slot del",
    summary: "deletes a memslot (memory_size 0) and frees memory the slot allocated",
    usage: "slot del <id>",
    example: "slot del 1",
    args: [{
      name: "id",
      complete: (ctx, p) => {
        try {
          return ctx.vm().obj.memslots.map((s) => String(s.id)).filter((x) => x.startsWith(p));
        } catch {
          return [];
        }
      },
    }],
    load,
  },
  {
    name: "slot list",
    summary: "the current VM's memslots: GPA, size, flags, userspace_addr, guest_memfd binding",
    usage: "slot list",
    example: "slot list",
    load,
  },
];
