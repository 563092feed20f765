/**
 * `/dev/kvm`: the system fd. API version, capabilities, and VM creation.
 * @module
 */

import { cstr, errno, libc, O } from "../ffi/libc.ts";
import { CAP, capName } from "../ffi/caps.ts";
import { IOCTL, VM_TYPES, vmTypeName } from "../ffi/uapi.ts";
import { errnoName } from "../ffi/errno.ts";
import { InUseError, KvmError } from "./errors.ts";
import { kvmOpenHint } from "./hints.ts";
import { nodeOwner } from "./device_node.ts";
import { ioctlInt, OwnedFd } from "./fd.ts";
import { Vm } from "./vm.ts";

/** What a failed KVM_CHECK_EXTENSION shows (built only on failure). */
const capArgs = (cap: number | bigint) => ({ cap: capName(Number(cap)) });

/** Where KVM lives. */
export const KVM_DEVICE = "/dev/kvm";

/**
 * The KVM device node kvmsh opens (the shell and scenarios alike): `$KVMSH_DEVICE` when set (a
 * test points it at a missing path to see a host without KVM), else {@link KVM_DEVICE}.
 */
export function kvmDevicePath(): string {
  try {
    return Deno.env.get("KVMSH_DEVICE") || KVM_DEVICE;
  } catch {
    return KVM_DEVICE; // no --allow-env
  }
}

/** The KVM system fd. Closing it closes every VM it created. */
export class Kvm {
  readonly #fd: OwnedFd;
  readonly #vms = new Set<Vm>();
  #nextVm = 0;
  readonly #next = { gmem: 0, vcpu: 0, map: 0 };

  private constructor(fd: number, readonly path: string) {
    this.#fd = new OwnedFd(fd, path);
  }

  /**
   * Opens `/dev/kvm`, or another KVM device node `path` (O_RDWR|O_CLOEXEC). A missing device or a
   * permission problem throws a KvmError whose hint names the path and says how to fix it.
   */
  static open(path = KVM_DEVICE): Kvm {
    const fd = libc().open(cstr(path), O.RDWR | O.CLOEXEC, 0);
    if (fd < 0) {
      const e = errno();
      const name = errnoName(e);
      const node = name === "EACCES" ? nodeOwner(path) : undefined;
      throw new KvmError({ syscall: "open", errno: e, args: { path }, hint: kvmOpenHint(name, path, node) });
    }
    return new Kvm(fd, path);
  }

  /** The fd number. */
  get fd(): number {
    return this.#fd.fd;
  }

  /** True until closed. */
  get open(): boolean {
    return this.#fd.open;
  }

  /** KVM_GET_API_VERSION (12 on every KVM since 2.6.22). */
  apiVersion(): number {
    return ioctlInt(this.fd, IOCTL.KVM_GET_API_VERSION);
  }

  /** KVM_CHECK_EXTENSION on the system fd: 0 means absent; some caps answer a count or mask. */
  checkExtension(cap: number): number {
    return ioctlInt(this.fd, IOCTL.KVM_CHECK_EXTENSION, cap, capArgs);
  }

  /** KVM_GET_VCPU_MMAP_SIZE: the size of a vCPU's kvm_run mapping. */
  vcpuMmapSize(): number {
    return ioctlInt(this.fd, IOCTL.KVM_GET_VCPU_MMAP_SIZE);
  }

  /** The VM types KVM_CAP_VM_TYPES says this host accepts (bit N = type N; default only if the cap is absent). */
  vmTypes(): number {
    const v = this.checkExtension(CAP.VM_TYPES);
    return v === 0 ? 1 : v;
  }

  /**
   * KVM_CREATE_VM. `type` is a name (`default`, `sw-protected`, `sev`, `sev-es`, `snp`, `tdx`)
   * or a raw number, which is sent as is. `name` names a VM made for a look only (the host
   * report's probe), so it takes no `vmN` from the VMs people make; default: the next `vmN`.
   */
  createVm(type: string | number = "default", name?: string): Vm {
    const t = typeof type === "number" ? type : Object.hasOwn(VM_TYPES, type) ? VM_TYPES[type] : undefined;
    if (t === undefined) {
      throw new RangeError(`unknown VM type '${type}' (known: ${Object.keys(VM_TYPES).join(", ")}, or a number)`);
    }
    // KVM_CREATE_VM answers EINTR when any signal lands while it registers its MMU notifier
    // (mm_take_all_locks); like QEMU, ask again. Seen here under a profiler's SIGPROF.
    let fd: number;
    for (let tries = 0;; tries++) {
      try {
        // A known type by its name, any other as the number sent ([type=99], not [type=type 99]).
        const shown = Object.values(VM_TYPES).includes(t) ? vmTypeName(t) : t;
        fd = ioctlInt(this.fd, IOCTL.KVM_CREATE_VM, t, { type: shown });
        break;
      } catch (e) {
        if (!(e instanceof KvmError) || e.errnoName !== "EINTR" || tries >= 100) throw e;
      }
    }
    const vm = new Vm(this, fd, t, name ?? `vm${this.#nextVm++}`, (v) => this.#vms.delete(v));
    this.#vms.add(vm);
    return vm;
  }

  /**
   * A new name for an object made under this Kvm (`gmem3`, `vcpu2`, `map1`): one counter per kind
   * across all its VMs, so a name means one object in errors, listings and the shell alike.
   */
  nextName(kind: "gmem" | "vcpu" | "map"): string {
    return `${kind}${this.#next[kind]++}`;
  }

  /** The VMs still open. */
  get vms(): Vm[] {
    return [...this.#vms];
  }

  /** Closes every VM, then the system fd. Safe to call twice. */
  close(): void {
    // A VM whose memory backs another VM's slot refuses to close until that VM is closed: retry
    // those after the others (a cycle of such loans throws the last refusal).
    // Any other failure (a VM's close goes to its end and then throws its first error) does not
    // stop the others nor the /dev/kvm fd: the first such error is thrown once all are done.
    let pending = [...this.#vms];
    let failed: { error: unknown } | undefined;
    while (pending.length) {
      const refused: Vm[] = [];
      let last: unknown;
      for (const vm of pending) {
        try {
          vm.close();
        } catch (e) {
          if (e instanceof InUseError) {
            refused.push(vm);
            last = e;
          } else failed ??= { error: e };
        }
      }
      if (refused.length === pending.length) throw failed?.error ?? last;
      pending = refused;
    }
    this.#fd.close();
    if (failed) throw failed.error;
  }

  /** `using kvm = Kvm.open()` closes it at scope end. */
  [Symbol.dispose](): void {
    this.close();
  }
}
