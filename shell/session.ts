/**
 * The shell's state: the Kvm (opened on first use), the objects made at the prompt under their
 * own names (the API's: vm0, gmem3, map1, vcpu2 — one counter per kind across the Kvm, so errors,
 * listings and recordings name the same object), the current VM, history, the recorder, and
 * Ctrl-C: SIGINT is held over every blocking call, so a Ctrl-C stops the command, not the shell.
 * Holds no KVM logic: it only names and finds the API's objects.
 * @module
 */

import { type GuestMemfd, holdSigint, Kvm, type Mapping, openKvm, type SigintHold, type Vm } from "../core.ts";
import { UsageError } from "./usage_error.ts";
import { CommandFailed } from "./failure.ts";
import type { Recorder } from "./recorder.ts";

/** Kinds of named objects. */
export type Kind = "vm" | "gmem" | "map" | "vcpu";

/** Something with a name at the prompt. */
export interface Named<T> {
  name: string;
  obj: T;
  /** The VM it belongs to (gmem, vcpu) or the gmem (map). */
  parent?: string;
  /** False once closed. */
  live: () => boolean;
  /** Made by `run` for itself (runGuest's guest_memfd), not by a command of the user's. */
  byRun?: boolean;
}

/** A vCPU as the shell sees it (the API's Vcpu, structurally). */
export interface VcpuLike {
  /** Its API name (`vcpu2`). */
  readonly name: string;
  close(): void;
  readonly open?: boolean;
}

/** Runs one line of commands (the dispatcher); used by `source`. */
export type LineRunner = (line: string, opts?: { depth?: number }) => Promise<boolean>;

/** The state of one shell. */
export class Session {
  #kvm?: Kvm;
  readonly vms = new Map<string, Named<Vm>>();
  readonly gmems = new Map<string, Named<GuestMemfd>>();
  readonly maps = new Map<string, Named<Mapping>>();
  readonly vcpus = new Map<string, Named<VcpuLike>>();
  current?: string;
  readonly history: string[] = [];
  recorder?: Recorder;
  /** Every recorded statement since the shell started (a recording starts with it). */
  readonly journal: string[] = [];
  /** Set by `exit` (and by Ctrl-C outside the prompt: 130); ends the session. */
  exitCode?: number;
  /** The exit status of the last failure (2 usage, 1 kernel/runtime), once anything failed. */
  failStatus?: number;
  /** The last successful guest run's exit code (port 0xF4) & 0xff, 0 without one. */
  runStatus = 0;
  /** The last command's error (undefined after a success). */
  lastError?: unknown;
  /** Ctrl-C seen during the current line (the prompt clears it per line); `source` stops on it. */
  #interrupted = false;
  /** The prompt's hold on SIGINT over a whole line (a Ctrl-C anywhere in it is counted at once). */
  lineHold?: SigintHold;
  /** Called when a Ctrl-C is noticed (the prompt starts a new line after the terminal's `^C`). */
  onInterrupt?: () => void;
  /** Global `--json`. */
  json = false;
  /** True on an interactive terminal. */
  interactive = false;
  /** Runs a line (set by the dispatcher). */
  runLine: LineRunner = () => Promise.resolve(false);
  /** Warnings a command printed before it sent (shown even when it then fails). */
  readonly pendingWarnings: string[] = [];
  /** Depth of nested `source`. */
  depth = 0;
  /** VM name → the vCPU its last run/step/continue used. */
  readonly lastVcpu = new Map<string, string>();

  constructor(readonly kvmPath?: string) {}

  /** True once a Ctrl-C (SIGINT) arrived during the current line. */
  get interrupted(): boolean {
    return this.#interrupted || (this.lineHold?.count() ?? 0) > 0;
  }

  set interrupted(v: boolean) {
    this.#interrupted = v;
  }

  /**
   * Notes a Ctrl-C: the line is interrupted (a `source` stops); outside the prompt the script ends
   * with status 130.
   */
  noteInterrupt(): void {
    this.#interrupted = true;
    if (!this.interactive) this.exitCode ??= 130;
    this.onInterrupt?.();
  }

  /**
   * Runs a blocking call (assembling, loading and running a guest) with SIGINT held: a Ctrl-C during
   * it is counted instead of ending the process; a guest run stops (stop `interrupt`). When the call
   * fails after a Ctrl-C (the assembler died of it, …) the command is reported as interrupted.
   */
  blocking<T>(fn: () => T): T {
    const h = holdSigint({ synchronous: true });
    let r: T;
    try {
      r = fn();
    } catch (e) {
      h.release();
      if (h.count() === 0) throw e;
      this.noteInterrupt();
      throw new CommandFailed(
        `interrupted (SIGINT): the command was abandoned${this.interactive ? "" : "; the script ends (status 130)"}`,
        130,
        "Interrupted",
      );
    }
    h.release();
    if (h.count() > 0) this.noteInterrupt();
    return r;
  }

  /**
   * kvmsh's exit status outside the prompt: `exit N` (or 130 after Ctrl-C); else the last
   * failure's once anything failed; else the last run's guest exit code; else 0.
   */
  get status(): number {
    return this.exitCode ?? this.failStatus ?? this.runStatus;
  }

  /** The Kvm, opened on first use. */
  get kvm(): Kvm {
    if (!this.#kvm || !this.#kvm.open) this.#kvm = this.kvmPath ? Kvm.open(this.kvmPath) : openKvm();
    return this.#kvm;
  }

  /** True when /dev/kvm has been opened. */
  get kvmOpen(): boolean {
    return this.#kvm?.open ?? false;
  }

  #find<T>(map: Map<string, Named<T>>, kind: string, name: string | undefined): Named<T> {
    if (name === undefined) throw new UsageError(`missing ${kind} name`);
    const n = map.get(name);
    if (!n) {
      const known = [...map.values()].filter((x) => x.live()).map((x) => x.name);
      throw new UsageError(`no ${kind} '${name}'${known.length ? ` (open: ${known.join(", ")})` : ` (none open)`}`);
    }
    if (!n.live()) throw new UsageError(`${name} is closed`);
    return n;
  }

  /** The VM called `name`, or the current VM. */
  vm(name?: string): Named<Vm> {
    if (name === undefined) {
      if (this.current === undefined) throw new UsageError("no current VM: `vm create` first (or `use vmN`)");
      return this.#find(this.vms, "VM", this.current);
    }
    return this.#find(this.vms, "VM", name);
  }

  /** The guest_memfd called `name`. */
  gmem(name: string | undefined): Named<GuestMemfd> {
    return this.#find(this.gmems, "guest_memfd", name);
  }

  /** The mapping called `name`. */
  map(name: string | undefined): Named<Mapping> {
    return this.#find(this.maps, "mapping", name);
  }

  /**
   * The vCPU called `name`, or the current VM's default: the one the last run/step/continue used,
   * else the VM's first (what runGuest picks), so `regs` shows the vCPU `run` ran.
   */
  vcpu(name?: string): Named<VcpuLike> {
    if (name === undefined) {
      const cur = this.vm().name; // throws without a current VM: `vm create` first
      const mine = [...this.vcpus.values()].filter((v) => v.live() && v.parent === cur);
      if (!mine.length) throw new UsageError("no vCPU on the current VM: `vcpu create` first");
      const last = this.lastVcpu.get(cur);
      return mine.find((v) => v.name === last) ?? mine[0];
    }
    return this.#find(this.vcpus, "vCPU", name);
  }

  /** The current VM's default vCPU name (see {@link vcpu}), or undefined when it has none. */
  defaultVcpu(): string | undefined {
    const cur = this.current;
    if (cur === undefined || ![...this.vcpus.values()].some((v) => v.live() && v.parent === cur)) return undefined;
    return this.vcpu().name;
  }

  /** Notes the vCPU a run/step/continue used: the default of its VM from now on. */
  usedVcpu(obj: VcpuLike): void {
    for (const v of this.vcpus.values()) if (v.obj === obj && v.parent) this.lastVcpu.set(v.parent, v.name);
  }

  /** Live object names of a kind (completion). */
  names(kind: Kind): string[] {
    const m = { vm: this.vms, gmem: this.gmems, map: this.maps, vcpu: this.vcpus }[kind] as Map<
      string,
      Named<unknown>
    >;
    return [...m.values()].filter((x) => x.live()).map((x) => x.name);
  }

  /** Registers a new VM under its API name and makes it current. */
  addVm(vm: Vm): string {
    const name = vm.name;
    this.vms.set(name, { name, obj: vm, live: () => vm.open });
    this.current = name;
    return name;
  }

  /** Registers a guest_memfd under its API name (`byRun`: one `run` made for itself). */
  addGmem(g: GuestMemfd, vm: string, byRun = false): string {
    const name = g.name;
    this.gmems.set(name, { name, obj: g, parent: vm, live: () => g.open, ...(byRun ? { byRun } : {}) });
    return name;
  }

  /** Registers a mapping under its API name. */
  addMap(m: Mapping, gmem: string): string {
    const name = m.name ?? `${gmem}.map`;
    this.maps.set(name, { name, obj: m, parent: gmem, live: () => m.mapped });
    return name;
  }

  /** Registers a vCPU under its API name. */
  addVcpu(v: VcpuLike, vm: string): string {
    const name = v.name;
    const open = () => v.open !== false && this.vms.get(vm)!.live();
    this.vcpus.set(name, { name, obj: v, parent: vm, live: open });
    return name;
  }

  /** The name of an API guest_memfd object (its own). */
  gmemName(g: GuestMemfd | undefined): string | null {
    return g ? g.name : null;
  }

  /** Closes every VM (and so every fd and mapping under it), keeping the Kvm open. */
  closeAll(): void {
    if (!this.#kvm) return;
    for (const vm of this.#kvm.vms) vm.close();
    this.current = undefined;
  }

  /** Closes everything including /dev/kvm. */
  close(): void {
    this.#kvm?.close();
    this.#kvm = undefined;
    this.current = undefined;
  }
}
