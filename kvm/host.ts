/**
 * The host report: kernel release, the KVM vendor module in use and its parameters, API
 * version and every named capability, on the system fd and on a default VM. Behaviour differs
 * between kvm_intel, kvm_amd and kvm_pvm, so a report always names which one answered.
 * @module
 */

import { CAP_NAMES, capName, CAPS_UAPI_VERSION, describeCapValue } from "../ffi/caps.ts";
import { VM_TYPE_BITS } from "../ffi/uapi.ts";
import { Kvm } from "./kvm.ts";
import { KvmError } from "./errors.ts";
import { listDir, readProcText } from "../ffi/procfs.ts";

/** KVM vendor modules kvmsh knows of, checked in /sys/module. */
export const VENDOR_MODULES = ["kvm_intel", "kvm_amd", "kvm_pvm", "kvm_arm", "kvm_riscv"] as const;

/** A loaded KVM module and its parameters. */
export interface ModuleInfo {
  name: string;
  parameters: Record<string, string>;
}

/** One capability's answers. */
export interface CapReport {
  cap: number;
  name: string;
  system: number | string;
  vm: number | string;
  decoded: string;
}

/** Everything `kvmsh caps` prints. */
export interface HostReport {
  kernel: string;
  machine: string;
  vendor: ModuleInfo[];
  kvm: ModuleInfo | undefined;
  apiVersion: number;
  capsUapi: string;
  vmTypes: string;
  caps: CapReport[];
}

function readText(path: string): string | undefined {
  return readProcText(path)?.trim();
}

/** Reads `/sys/module/<name>/parameters/*`; undefined when the module is not loaded. */
export function moduleInfo(name: string): ModuleInfo | undefined {
  const dir = `/sys/module/${name}`;
  if (listDir(dir) === undefined) return undefined;
  const parameters: Record<string, string> = {};
  for (const p of listDir(`${dir}/parameters`) ?? []) {
    const v = readText(`${dir}/parameters/${p}`);
    if (v !== undefined) parameters[p] = v;
  }
  return { name, parameters };
}

/** The vendor modules loaded on this host. */
export function vendorModules(): ModuleInfo[] {
  return VENDOR_MODULES.map(moduleInfo).filter((m): m is ModuleInfo => m !== undefined);
}

/** The kernel release (`uname -r`). */
export function kernelRelease(): string {
  return readText("/proc/sys/kernel/osrelease") ?? "unknown";
}

/** Builds the host report from an open Kvm (a default VM is created and closed for VM-scope answers). */
export function hostReport(kvm: Kvm, caps: number[] = Object.keys(CAP_NAMES).map(Number)): HostReport {
  const vm = kvm.createVm("default", "caps-probe"); // a look only: takes no vmN
  const answer = (f: () => number): number | string => {
    try {
      return f();
    } catch (e) {
      return e instanceof KvmError ? e.errnoName : String(e);
    }
  };
  try {
    const rows = caps.map((cap) => {
      const system = answer(() => kvm.checkExtension(cap));
      const vmv = answer(() => vm.checkExtension(cap));
      // The VM's answer, decoded beside the system fd's (a VM's 0 means something else where /dev/kvm says 1).
      const decoded = typeof vmv === "number"
        ? describeCapValue(cap, vmv, typeof system === "number" ? system : null)
        : describeCapValue(cap, typeof system === "number" ? system : 0);
      return { cap, name: capName(cap), system, vm: vmv, decoded };
    });
    return {
      kernel: kernelRelease(),
      machine: Deno.build.arch,
      vendor: vendorModules(),
      kvm: moduleInfo("kvm"),
      apiVersion: kvm.apiVersion(),
      capsUapi: CAPS_UAPI_VERSION,
      vmTypes: VM_TYPE_BITS.format(BigInt(kvm.vmTypes())),
      caps: rows,
    };
  } finally {
    vm.close();
  }
}
