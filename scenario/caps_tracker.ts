/**
 * Which capabilities a scenario read: while the runner is active, KVM_CHECK_EXTENSION on the system
 * fd and on VM fds (Kvm.checkExtension, Vm.checkExtension) is observed, so the report can print
 * the caps the scenario's answers depended on.
 * @module
 */

import { capName } from "../kvm/abi.ts";
import { Kvm } from "../kvm/kvm.ts";
import { Vm } from "../kvm/vm.ts";
import { KvmError } from "../kvm/errors.ts";
import type { CapRead } from "./result.ts";

let listener: ((r: CapRead) => void) | undefined;
let installed = false;

function wrap(proto: { checkExtension(cap: number): number }, scope: "system" | "vm"): void {
  const orig = proto.checkExtension;
  proto.checkExtension = function (this: unknown, cap: number): number {
    try {
      const v = orig.call(this, cap);
      listener?.({ cap: capName(cap).replace(/^KVM_CAP_/, ""), scope, value: v });
      return v;
    } catch (e) {
      if (e instanceof KvmError) listener?.({ cap: capName(cap).replace(/^KVM_CAP_/, ""), scope, value: e.errnoName });
      throw e;
    }
  };
}

/** Starts collecting cap reads into a fresh list (one per scenario); returns it. */
export function collectCaps(): CapRead[] {
  if (!installed) {
    wrap(Kvm.prototype, "system");
    wrap(Vm.prototype, "vm");
    installed = true;
  }
  const seen = new Map<string, CapRead>();
  const list: CapRead[] = [];
  listener = (r) => {
    const key = `${r.scope}:${r.cap}:${r.value}`;
    if (seen.has(key)) return;
    seen.set(key, r);
    list.push(r);
  };
  return list;
}

/** Stops collecting. */
export function stopCollectingCaps(): void {
  listener = undefined;
}
