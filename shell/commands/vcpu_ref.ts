/**
 * Finding a vCPU at the prompt and naming it in a recording: `vcpu create` binds `const vcpu0 =`
 * in the recorded script, but a vCPU that `run` made (runGuest creates one when the VM has none)
 * has no variable there, so it is recorded as a lookup on its VM by id. Plus `--timeout` parsing.
 * @module
 */

import { ownMemory, type Vcpu, type Vm } from "../../core.ts";
import { ident, int } from "../ts_literal.ts";
import type { Session } from "../session.ts";
import { UsageError } from "../usage_error.ts";

/** vCPUs the API made on its own (no variable in a recorded script). */
const adopted = new WeakSet<object>();

/** The vCPU called `name` (default: the current VM's last one). */
export function vcpuOf(ctx: Session, name?: string): { name: string; obj: Vcpu; vm: string } {
  const v = ctx.vcpu(name);
  return { name: v.name, obj: v.obj as Vcpu, vm: v.parent! };
}

/** Registers vCPUs the API made on its own (runGuest creates one when the VM has none). */
export function adoptVcpus(ctx: Session, vmName: string, vm: Vm): void {
  const known = new Set([...ctx.vcpus.values()].map((v) => v.obj));
  for (const v of vm.vcpus) {
    if (known.has(v)) continue;
    adopted.add(v);
    ctx.addVcpu(v, vmName);
  }
}

/**
 * Registers what a run made for itself on the VM: vCPUs (see {@link adoptVcpus}) and the guest_memfd
 * behind `run --memory gmem:…`, listed by `gmem list` as made by `run`.
 */
export function adoptRunObjects(ctx: Session, vmName: string, vm: Vm): void {
  adoptVcpus(ctx, vmName, vm);
  for (const g of ownMemory(vm).gmems) if (!ctx.gmems.has(g.name)) ctx.addGmem(g, vmName, true);
}

/** The vCPU as a recorded script names it: its variable, or `vm0.vcpus.find((v) => v.id === 0)!`. */
export function vcpuRef(ctx: Session, name?: string): string {
  const v = vcpuOf(ctx, name);
  if (!adopted.has(v.obj)) return ident(v.name);
  return `${ident(v.vm)}.vcpus.find((v) => v.id === ${int(v.obj.id)})!`;
}

/** `--timeout 5s|500ms|1m|2.5s` → milliseconds, `0`/`none` → 0 (no timeout); undefined when not given. */
export function parseTimeout(t: string | true | undefined): number | undefined {
  if (t === undefined) return undefined;
  if (t === true) throw new UsageError("missing value for --timeout");
  if (t === "none") return 0; // 0: no timeout (Ctrl-C still stops the guest)
  if (t.startsWith("-")) {
    throw new UsageError(`--timeout: '${t}' is negative (e.g. 5s, 500ms, 1m; 0 or none: no timeout)`);
  }
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(t);
  if (!m) throw new UsageError(`bad --timeout '${t}' (e.g. 5s, 500ms, 1m; 0 or none: no timeout)`);
  const v = Number(m[1]) * (m[2] === "ms" ? 1 : m[2] === "m" ? 60_000 : 1000);
  if (!Number.isSafeInteger(Math.round(v))) {
    throw new UsageError(`--timeout: '${t}' is too long (use 0 or none for no timeout)`);
  }
  return v > 0 ? Math.max(1, Math.round(v)) : 0; // a tiny timeout stays a timeout, not "none"
}
