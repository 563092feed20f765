/**
 * The guest ABI kvmsh's exit loop implements by default (design.md "Guest ABI"):
 * - port 0xE9: console byte (QEMU/Bochs debugcon);
 * - COM1 0x3f8: a minimal 16550 (THR writes print, LSR reads say "transmitter empty");
 * - port 0xF4: exit code, as QEMU's isa-debug-exit (process status = (value << 1) | 1);
 * - port 0x1000: ucall, selftests-style: the guest writes a {@link GUEST_UCALL} block and does
 *   `out` to the port with the block's guest physical address in RDI;
 * - KVM_HC_MAP_GPA_RANGE (KVM_EXIT_HYPERCALL): KVM_SET_MEMORY_ATTRIBUTES on the range, the
 *   kernel's answer recorded and returned to the guest in RAX (0 or -errno).
 * @module
 */

import { GUEST_UCALL } from "../ffi/structs.ts";
import { decode } from "../ffi/struct_codec.ts";
import { KVM_HC_MAP_GPA_RANGE } from "../ffi/caps.ts";
import { MAP_GPA_RANGE_FLAGS, MEMORY_ATTRIBUTES } from "../ffi/uapi.ts";
import { errnoName } from "../ffi/errno.ts";
import type { ExitView } from "./exit_view.ts";
import type { Vcpu } from "./vcpu.ts";
import { KvmError } from "./errors.ts";

/** Ports of the guest ABI. */
export const PORT = Object.freeze({ CONSOLE: 0xe9, EXIT: 0xf4, COM1: 0x3f8, UCALL: 0x1000 });

/** Ucall commands (GUEST_UCALL.cmd). */
export const UCALL_CMD = Object.freeze({ PRINT: 1, SYNC: 2, ASSERT: 3, DONE: 4 });
const UCALL_NAMES: Record<number, UcallName> = Object.fromEntries(
  Object.entries(UCALL_CMD).map(([name, cmd]) => [cmd, name.toLowerCase() as UcallName]),
);

/** A ucall's command name. */
export type UcallName = "print" | "sync" | "assert" | "done" | "unknown";

/** One ucall the guest made. */
export interface Ucall {
  cmd: UcallName;
  /** The raw cmd number. */
  nr: number;
  args: bigint[];
  /** The message string (print text, assertion text), "" when none. */
  message: string;
  /** Guest physical address of the ucall block. */
  gpa: bigint;
}

/** One MAP_GPA_RANGE hypercall and what kvmsh did with it. */
export interface Conversion {
  gpa: bigint;
  npages: bigint;
  /** The hypercall's attribute bits and their names. */
  attrs: bigint;
  attrNames: string;
  /** The conversion asked for. */
  to: "private" | "shared";
  /** `ok` or the errno name KVM_SET_MEMORY_ATTRIBUTES answered. */
  result: string;
  /** What the guest got in RAX. */
  ret: bigint;
}

/** isa-debug-exit: the value the guest wrote and the status QEMU would exit with. */
export interface ExitCode {
  value: number;
  status: number;
}

/** What a default handler decided: keep running, or stop with this reason. */
export type AbiStop = "exit-code" | "done" | "assert" | "unhandled-io" | "ucall" | undefined;

const LSR_THRE_TEMT = 0x60;
const IIR_NO_INT = 0x01;
const LCR_DLAB = 0x80;
const PAGE = 4096n;

/** The state of the guest ABI during runs: console text, exit code, ucalls, conversions. */
export class GuestAbi {
  #out = new Uint8Array(256);
  #outLen = 0;
  #lcr = 0;
  #regs = new Uint8Array(8);
  /** isa-debug-exit result, once the guest wrote port 0xF4. */
  exitCode: ExitCode | undefined;
  /** Every ucall, in order. */
  readonly ucalls: Ucall[] = [];
  /** Every MAP_GPA_RANGE conversion, in order. */
  readonly conversions: Conversion[] = [];
  /** Called with each console byte as it is written (live output); optional. */
  onConsole?: (byte: number) => void;
  /**
   * Called with each ucall after it is recorded (before the default action): `stop` ends the run
   * with stop reason `ucall` (e.g. at a sync point, as a selftest's host loop does); the guest
   * resumes after the ucall on the next run.
   */
  onUcall?: (u: Ucall, vcpu: Vcpu) => "continue" | "stop" | void;
  /** Unhandled ports: stop the run (default) or ignore (OUT dropped, IN reads all-ones). */
  unhandledIo: "stop" | "ignore" = "stop";

  /** Console output so far (0xE9, COM1 THR and ucall prints), UTF-8 decoded. */
  get console(): string {
    return this.consoleSince(0);
  }

  /** Console bytes so far (a run keeps this at its start, see {@link consoleSince}). */
  get consoleLength(): number {
    return this.#outLen;
  }

  /** The console text written since byte `offset`, decoded as a whole (a character split across runs stays whole). */
  consoleSince(offset: number): string {
    return new TextDecoder().decode(this.#out.subarray(offset, this.#outLen));
  }

  /** Clears console, exit code, ucalls and conversions. */
  reset(): void {
    this.#outLen = 0;
    // A long run's console need not stay allocated until the next one grows it again.
    if (this.#out.length > 65536) this.#out = new Uint8Array(256);
    this.exitCode = undefined;
    this.ucalls.length = 0;
    this.conversions.length = 0;
  }

  #byte(b: number): void {
    if (this.#outLen === this.#out.length) {
      const n = new Uint8Array(this.#out.length * 2);
      n.set(this.#out);
      this.#out = n;
    }
    this.#out[this.#outLen++] = b;
    this.onConsole?.(b);
  }

  /** Appends text to the console (ucall print). */
  print(text: string): void {
    for (const b of new TextEncoder().encode(text)) this.#byte(b);
  }

  /**
   * The default IO handling. Returns `true` to continue, or the reason to stop (including
   * `unhandled-io` for a port the ABI does not know, unless {@link unhandledIo} is `ignore`).
   */
  io(x: ExitView, vcpu: Vcpu): true | AbiStop {
    const port = x.ioPort;
    const out = x.ioIsOut;
    if (port === PORT.CONSOLE) {
      if (out) { for (let i = 0; i < x.ioCount; i++) this.#byte(x.ioElement(i) & 0xff); }
      else x.ioValue = PORT.CONSOLE; // Bochs: reading 0xE9 answers 0xE9 ("port present")
      return true;
    }
    if (port >= PORT.COM1 && port < PORT.COM1 + 8) return this.#serial(x, port - PORT.COM1, out);
    if (port === PORT.EXIT && out) {
      const value = x.ioValue;
      this.exitCode = { value, status: ((value << 1) | 1) >>> 0 };
      return "exit-code";
    }
    if (port === PORT.UCALL) return this.#ucall(vcpu);
    // An IN nobody answers reads all-ones, as on a bus with nothing there: also when the run stops
    // on it, so a later KVM_RUN (continue, step) completes it with that, not the last exit's bytes.
    if (!out) { for (let i = 0; i < x.ioCount; i++) x.setIoElement(0xffffffff, i); }
    if (this.unhandledIo === "ignore") return true;
    return "unhandled-io";
  }

  #serial(x: ExitView, reg: number, out: boolean): true {
    const dlab = (this.#lcr & LCR_DLAB) !== 0;
    if (out) {
      for (let i = 0; i < x.ioCount; i++) {
        const v = x.ioElement(i) & 0xff;
        if (reg === 0 && !dlab) this.#byte(v);
        else if (reg === 3) this.#lcr = v;
        else this.#regs[reg] = v;
      }
      return true;
    }
    let v = 0;
    if (reg === 5) v = LSR_THRE_TEMT;
    else if (reg === 2) v = IIR_NO_INT;
    else if (reg === 3) v = this.#lcr;
    else if (reg !== 0 || dlab) v = this.#regs[reg];
    for (let i = 0; i < x.ioCount; i++) x.setIoElement(v, i);
    return true;
  }

  #ucall(vcpu: Vcpu): true | AbiStop {
    const gpa = vcpu.getReg("rdi");
    const u = decode(GUEST_UCALL, vcpu.vm.readGuest(gpa, GUEST_UCALL.size));
    let message = "";
    if (u.msg_gpa && u.msg_len) {
      const len = Number(u.msg_len < 4096n ? u.msg_len : 4096n);
      message = new TextDecoder().decode(vcpu.vm.readGuest(u.msg_gpa, len)).replace(/\0.*$/s, "");
    }
    const nr = Number(u.cmd);
    const call: Ucall = { cmd: UCALL_NAMES[nr] ?? "unknown", nr, args: u.args, message, gpa };
    this.ucalls.push(call);
    if (this.onUcall?.(call, vcpu) === "stop") {
      if (nr === UCALL_CMD.PRINT) this.print(message);
      return "ucall";
    }
    if (nr === UCALL_CMD.PRINT) this.print(message);
    if (nr === UCALL_CMD.DONE) return "done";
    if (nr === UCALL_CMD.ASSERT) return "assert";
    return true;
  }

  /**
   * KVM_HC_MAP_GPA_RANGE: converts the range with KVM_SET_MEMORY_ATTRIBUTES (always sent, so
   * the kernel's answer shows) and puts 0 or -errno in the hypercall's return value. Other
   * hypercall numbers return undefined (not handled).
   */
  hypercall(x: ExitView, vcpu: Vcpu): true | undefined {
    if (x.hypercallNr !== KVM_HC_MAP_GPA_RANGE) return undefined;
    const gpa = x.hypercallArg(0);
    const npages = x.hypercallArg(1);
    const attrs = x.hypercallArg(2);
    const priv = (attrs & MAP_GPA_RANGE_FLAGS.bits.encrypted) !== 0n;
    let result = "ok";
    let ret = 0n;
    try {
      vcpu.vm.setMemoryAttributes(gpa, npages * PAGE, priv ? MEMORY_ATTRIBUTES.bits.private : 0n);
    } catch (e) {
      if (!(e instanceof KvmError)) throw e;
      result = errnoName(e.errno);
      ret = BigInt.asUintN(64, -BigInt(e.errno));
    }
    x.hypercallRet = ret;
    this.conversions.push({
      gpa,
      npages,
      attrs,
      attrNames: MAP_GPA_RANGE_FLAGS.format(attrs) || "decrypted",
      to: priv ? "private" : "shared",
      result,
      ret,
    });
    return true;
  }
}
