/**
 * The current exit as a plain object (for display, `--json` and recording) and as one line of
 * text. Not the hot path: the exit loop reads {@link ExitView} getters; this copies them out.
 * @module
 */

import {
  EXIT,
  exitReasonName,
  INTERNAL_ERROR_NAMES,
  KVM_EXIT_HYPERCALL_LONG_MODE,
  MEMORY_EXIT_FLAGS,
  SYSTEM_EVENT_NAMES,
} from "../ffi/uapi.ts";
import { KVM_HC_MAP_GPA_RANGE } from "../ffi/caps.ts";
import { errnoName } from "../ffi/errno.ts";
import type { ExitView } from "./exit_view.ts";
import { ClosedError } from "./errors.ts";
import { hex } from "./units.ts";
import { KVM_RUN_LAYOUT } from "../ffi/structs.ts";

const RUN = KVM_RUN_LAYOUT.fields;

/** A decoded exit: `reason`/`name` always, plus the fields of that exit kind. */
export interface ExitInfo {
  /** KVM_EXIT_* number. */
  reason: number;
  /** Exit name (`IO`, `MMIO`, `HLT`, …). */
  name: string;
  /** errno name when KVM_RUN returned -1 (EINTR for INTR, EFAULT/EHWPOISON for MEMORY_FAULT). */
  errno?: string;
  /** The exit_reason the kernel left in kvm_run when it differs from `reason` (stale after EINTR). */
  rawReason?: number;
  io?: { port: number; size: number; direction: "in" | "out"; count: number; data: number[] };
  mmio?: { addr: bigint; len: number; isWrite: boolean; data: number[]; value: bigint };
  hypercall?: { nr: number; name: string; args: bigint[]; ret: bigint; longMode: boolean };
  internalError?: { suberror: number; name: string; data: bigint[] };
  systemEvent?: { type: number; name: string; data: bigint[] };
  memoryFault?: { gpa: bigint; size: bigint; flags: bigint; flagNames: string; private: boolean };
  failEntry?: { hardwareReason: bigint; cpu: number };
  debug?: { exception: number; pc: bigint; dr6: bigint; dr7: bigint };
  exception?: { nr: number; errorCode: number };
}

const HYPERCALL_NAMES: Record<number, string> = { [KVM_HC_MAP_GPA_RANGE]: "MAP_GPA_RANGE" };

/** Copies the current exit out of kvm_run into a plain object. */
export function describeExit(x: ExitView): ExitInfo {
  // A closed vCPU's kvm_run is unmapped: there is no exit left to decode (it made one up: IO port 0).
  if (x.detached) throw new ClosedError(x.vcpu?.name ?? "the vCPU");
  const reason = x.reason;
  const info: ExitInfo = { reason, name: exitReasonName(reason) };
  if (x.errno) info.errno = errnoName(x.errno);
  if (x.errno && x.rawReason !== reason) info.rawReason = x.rawReason;
  switch (reason) {
    case EXIT.IO:
      info.io = {
        port: x.ioPort,
        size: x.ioSize,
        direction: x.ioIsOut ? "out" : "in",
        count: x.ioCount,
        data: x.ioValues(),
      };
      break;
    case EXIT.MMIO:
      info.mmio = {
        addr: x.mmioAddr,
        len: x.mmioLen,
        isWrite: x.mmioIsWrite,
        data: x.mmioBytes(),
        value: x.mmioLen >= 8 ? x.mmioData64 : BigInt.asUintN(x.mmioLen * 8, x.mmioData64),
      };
      break;
    case EXIT.HYPERCALL: {
      const args: bigint[] = [];
      for (let i = 0; i < RUN.hypercall_args.count; i++) args.push(x.hypercallArg(i));
      info.hypercall = {
        nr: x.hypercallNr,
        name: HYPERCALL_NAMES[x.hypercallNr] ?? `#${x.hypercallNr}`,
        args,
        ret: x.hypercallRet,
        longMode: (x.hypercallFlags & KVM_EXIT_HYPERCALL_LONG_MODE) !== 0n,
      };
      break;
    }
    case EXIT.INTERNAL_ERROR: {
      const data: bigint[] = [];
      for (let i = 0; i < Math.min(x.internalNdata, RUN.internal_data.count); i++) data.push(x.internalData(i));
      const s = x.internalSuberror;
      info.internalError = { suberror: s, name: INTERNAL_ERROR_NAMES[s] ?? `#${s}`, data };
      break;
    }
    case EXIT.SYSTEM_EVENT: {
      const data: bigint[] = [];
      for (let i = 0; i < Math.min(x.systemEventNdata, RUN.system_event_data.count); i++) {
        data.push(x.systemEventData(i));
      }
      const t = x.systemEventType;
      info.systemEvent = { type: t, name: SYSTEM_EVENT_NAMES[t] ?? `#${t}`, data };
      break;
    }
    case EXIT.MEMORY_FAULT: {
      const flags = x.memoryFaultFlags;
      info.memoryFault = {
        gpa: x.memoryFaultGpa,
        size: x.memoryFaultSize,
        flags,
        flagNames: MEMORY_EXIT_FLAGS.format(flags) || "shared",
        private: (flags & MEMORY_EXIT_FLAGS.bits.private) !== 0n,
      };
      break;
    }
    case EXIT.FAIL_ENTRY:
    case EXIT.UNKNOWN:
      info.failEntry = { hardwareReason: x.hardwareReason, cpu: x.failEntryCpu };
      break;
    case EXIT.DEBUG:
      info.debug = { exception: x.debugException, pc: x.debugPc, dr6: x.debugDr6, dr7: x.debugDr7 };
      break;
    case EXIT.EXCEPTION:
      info.exception = { nr: x.exceptionNr, errorCode: x.exceptionErrorCode };
      break;
  }
  return info;
}

/** One line: `IO out port=0xe9 size=1 data=0x48`, `MMIO read addr=0x100000000 len=4`, … */
export function formatExit(i: ExitInfo): string {
  const head = i.errno ? `${i.name} (KVM_RUN: ${i.errno})` : i.name;
  const hx = (v: number | bigint) => hex(v);
  if (i.io) {
    const d = i.io.direction === "out" ? ` data=${i.io.data.map(hx).join(",")}` : "";
    return `${head} ${i.io.direction} port=${hx(i.io.port)} size=${i.io.size}${
      i.io.count > 1 ? ` count=${i.io.count}` : ""
    }${d}`;
  }
  if (i.mmio) {
    return `${head} ${i.mmio.isWrite ? "write" : "read"} addr=${hx(i.mmio.addr)} len=${i.mmio.len}${
      i.mmio.isWrite ? ` data=${hx(i.mmio.value)}` : ""
    }`;
  }
  if (i.hypercall) {
    return `${head} ${i.hypercall.name} args=${i.hypercall.args.slice(0, 3).map(hx).join(",")}${
      i.hypercall.longMode ? " long-mode" : ""
    }`;
  }
  if (i.internalError) {
    return `${head} suberror=${i.internalError.name}(${i.internalError.suberror}) data=[${
      i.internalError.data.map(hx).join(",")
    }]`;
  }
  if (i.systemEvent) return `${head} ${i.systemEvent.name} data=[${i.systemEvent.data.map(hx).join(",")}]`;
  if (i.memoryFault) {
    return `${head} gpa=${hx(i.memoryFault.gpa)} size=${hx(i.memoryFault.size)} flags=${i.memoryFault.flagNames}`;
  }
  if (i.failEntry) return `${head} hardware_reason=${hx(i.failEntry.hardwareReason)} cpu=${i.failEntry.cpu}`;
  if (i.debug) return `${head} exception=${i.debug.exception} pc=${hx(i.debug.pc)} dr6=${hx(i.debug.dr6)}`;
  if (i.exception) return `${head} vector=${i.exception.nr} error_code=${hx(i.exception.errorCode)}`;
  return head;
}

/** The same object with bigints as `0x…` strings (for JSON.stringify). */
export function exitToJSON(i: ExitInfo): Record<string, unknown> {
  return JSON.parse(JSON.stringify(i, (_k, v) => typeof v === "bigint" ? hex(v) : v));
}
