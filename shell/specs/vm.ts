/**
 * The vm commands' table entries and their behaviour (commands/vm.ts), loaded with the table: `vm create`
 * and `run` are on the path of nearly every kvmsh process, where an `import()` costs more (~1.5 ms for
 * the vcpu group) than loading them with the shell; the other groups load on first use.
 * @module
 */

import { VM_TYPES } from "../../core.ts";
import { objects, words } from "../commands/complete_helpers.ts";
import type { Command } from "../commands/types.ts";
import { vmImpl } from "../commands/vm.ts";

const load = () => Promise.resolve(vmImpl);

/** vm commands. */
export const vmCommands: Command[] = [
  {
    name: "vm create",
    summary: "KVM_CREATE_VM; the new VM becomes the current one",
    usage: "vm create [--type default|sw-protected|sev|sev-es|snp|tdx|N]",
    example: "vm create",
    flags: [{ name: "type", value: "T", help: "VM type name or number", complete: words(() => Object.keys(VM_TYPES)) }],
    load,
  },
  {
    name: "vm list",
    summary: "the open VMs with their fds, guest_memfds, memslots and vCPUs",
    usage: "vm list",
    example: "vm list",
    load,
  },
  {
    name: "vm close",
    summary: "closes a VM and everything it owns (vCPUs, guest_memfds, mappings, memslot memory)",
    usage: "vm close [vm]",
    example: "vm close vm0",
    args: [{ name: "vm", optional: true, complete: objects("vm") }],
    load,
  },
  {
    name: "use",
    summary: "makes a VM the current one (the default for gmem, slot, attr, vcpu and GPA commands)",
    usage: "use <vm>",
    example: "use vm1",
    args: [{ name: "vm", complete: objects("vm") }],
    load,
  },
];
