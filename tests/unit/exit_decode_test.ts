/**
 * Exit decoding from a fake kvm_run: bytes written at the header offsets (the same offsets the
 * C headers give, pinned in uapi_pins_test.ts), then decoded through ExitView / describeExit.
 * Covers every exit kind, including those this host cannot produce (FAIL_ENTRY, SYSTEM_EVENT,
 * HYPERCALL, MEMORY_FAULT, …).
 */

import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { classifyRunFailure, ExitView } from "../../kvm/exit_view.ts";
import { describeExit, exitToJSON, formatExit } from "../../kvm/exit_decode.ts";
import { GuestAbi, PORT } from "../../kvm/guest_abi.ts";
import { EXIT } from "../../ffi/uapi.ts";
import type { Vcpu } from "../../kvm/vcpu.ts";

const RUN_SIZE = 3 * 4096;

/** A fake kvm_run: a buffer, a DataView to write fields, and the view under test. */
function fake(reason: number, errno = 0) {
  const buf = new ArrayBuffer(RUN_SIZE);
  const dv = new DataView(buf);
  dv.setUint32(8, reason, true);
  const x = new ExitView(buf);
  x.reason = reason;
  x.errno = errno;
  return { dv, x };
}

Deno.test("IO out: port, size, direction, count, data from data_offset", () => {
  const { dv, x } = fake(EXIT.IO);
  dv.setUint8(32, 1); // out
  dv.setUint8(33, 2); // size
  dv.setUint16(34, 0x3f8, true);
  dv.setUint32(36, 2, true); // count
  dv.setBigUint64(40, 4096n, true);
  dv.setUint16(4096, 0x4142, true);
  dv.setUint16(4098, 0x4344, true);
  eq([x.ioPort, x.ioSize, x.ioIsOut, x.ioCount, x.ioValue, x.ioElement(1)], [0x3f8, 2, true, 2, 0x4142, 0x4344]);
  const d = describeExit(x);
  eq(d.name, "IO");
  eq(d.io, { port: 0x3f8, size: 2, direction: "out", count: 2, data: [0x4142, 0x4344] });
  eq(formatExit(d), "IO out port=0x3f8 size=2 count=2 data=0x4142,0x4344");
});

Deno.test("IO in: a handler's value lands at data_offset", () => {
  const { dv, x } = fake(EXIT.IO);
  dv.setUint8(32, 0);
  dv.setUint8(33, 4);
  dv.setUint16(34, 0x71, true);
  dv.setUint32(36, 1, true);
  dv.setBigUint64(40, 4096n, true);
  x.ioValue = 0xdeadbeef;
  eq(dv.getUint32(4096, true), 0xdeadbeef);
  eq(describeExit(x).io?.direction, "in");
  eq(formatExit(describeExit(x)), "IO in port=0x71 size=4");
});

Deno.test("MMIO: address (number and bigint), len, write flag, data; read data can be supplied", () => {
  const { dv, x } = fake(EXIT.MMIO);
  dv.setBigUint64(32, 0x1_0000_1000n, true);
  dv.setUint32(40, 0x11223344, true);
  dv.setUint32(48, 4, true);
  dv.setUint8(52, 1);
  eq([x.mmioAddress, x.mmioAddr, x.mmioLen, x.mmioIsWrite, x.mmioValue], [
    0x100001000,
    0x100001000n,
    4,
    true,
    0x11223344,
  ]);
  const d = describeExit(x);
  eq(d.mmio, { addr: 0x100001000n, len: 4, isWrite: true, data: [0x44, 0x33, 0x22, 0x11], value: 0x11223344n });
  eq(formatExit(d), "MMIO write addr=0x100001000 len=4 data=0x11223344");
  dv.setUint8(52, 0);
  x.mmioValue = 0xcafe;
  eq(dv.getUint32(40, true), 0xcafe);
  eq(formatExit(describeExit(x)), "MMIO read addr=0x100001000 len=4");
});

Deno.test("HLT, SHUTDOWN, INTR (EINTR with a stale exit_reason) and unnamed reasons", () => {
  eq(describeExit(fake(EXIT.HLT).x), { reason: 5, name: "HLT" });
  eq(describeExit(fake(EXIT.SHUTDOWN).x), { reason: 8, name: "SHUTDOWN" });
  const { dv, x } = fake(EXIT.INTR, 4);
  dv.setUint32(8, EXIT.IO, true); // the kernel left the previous reason
  eq(describeExit(x), { reason: 10, name: "INTR", errno: "EINTR", rawReason: 2 });
  eq(formatExit(describeExit(x)), "INTR (KVM_RUN: EINTR)");
  eq(describeExit(fake(EXIT.X86_RDMSR).x).name, "X86_RDMSR");
  eq(describeExit(fake(EXIT.IRQ_WINDOW_OPEN).x).name, "IRQ_WINDOW_OPEN");
  eq(describeExit(fake(99).x).name, "#99");
});

Deno.test("FAIL_ENTRY: hardware reason and cpu", () => {
  const { dv, x } = fake(EXIT.FAIL_ENTRY);
  dv.setBigUint64(32, 0x80000021n, true);
  dv.setUint32(40, 1, true);
  eq(describeExit(x).failEntry, { hardwareReason: 0x80000021n, cpu: 1 });
  eq(formatExit(describeExit(x)), "FAIL_ENTRY hardware_reason=0x80000021 cpu=1");
});

Deno.test("INTERNAL_ERROR: suberror named, ndata words", () => {
  const { dv, x } = fake(EXIT.INTERNAL_ERROR);
  dv.setUint32(32, 1, true);
  dv.setUint32(36, 2, true);
  dv.setBigUint64(40, 0x10n, true);
  dv.setBigUint64(48, 0x1000n, true);
  dv.setBigUint64(56, 0x999n, true); // beyond ndata: not shown
  eq(describeExit(x).internalError, { suberror: 1, name: "EMULATION", data: [0x10n, 0x1000n] });
  dv.setUint32(32, 3, true);
  eq(describeExit(x).internalError?.name, "DELIVERY_EV");
  dv.setUint32(32, 77, true);
  eq(describeExit(x).internalError?.name, "#77");
});

Deno.test("SYSTEM_EVENT: type named, data", () => {
  const { dv, x } = fake(EXIT.SYSTEM_EVENT);
  dv.setUint32(32, 2, true);
  dv.setUint32(36, 1, true);
  dv.setBigUint64(40, 0xabcn, true);
  eq(describeExit(x).systemEvent, { type: 2, name: "RESET", data: [0xabcn] });
  eq(formatExit(describeExit(x)), "SYSTEM_EVENT RESET data=[0xabc]");
});

Deno.test("HYPERCALL: nr named (MAP_GPA_RANGE), args, ret writable, long-mode flag", () => {
  const { dv, x } = fake(EXIT.HYPERCALL);
  dv.setBigUint64(32, 12n, true);
  dv.setBigUint64(40, 0x200000n, true);
  dv.setBigUint64(48, 1n, true);
  dv.setBigUint64(56, 0x10n, true);
  dv.setBigUint64(96, 1n, true);
  const h = describeExit(x).hypercall!;
  eq([h.nr, h.name, h.args.slice(0, 3), h.longMode], [12, "MAP_GPA_RANGE", [0x200000n, 1n, 0x10n], true]);
  x.hypercallRet = -25n;
  eq(dv.getBigInt64(88, true), -25n);
  eq(formatExit(describeExit(x)), "HYPERCALL MAP_GPA_RANGE args=0x200000,0x1,0x10 long-mode");
});

Deno.test("MEMORY_FAULT (KVM_RUN -1/EFAULT + exit reason): gpa, size, flags with private named", () => {
  const { dv, x } = fake(EXIT.MEMORY_FAULT, 14);
  dv.setBigUint64(32, 1n << 3n, true);
  dv.setBigUint64(40, 0x1_0000_0000n, true);
  dv.setBigUint64(48, 0x1000n, true);
  const d = describeExit(x);
  eq(d.errno, "EFAULT");
  eq(d.memoryFault, { gpa: 0x100000000n, size: 0x1000n, flags: 8n, flagNames: "private", private: true });
  eq(formatExit(d), "MEMORY_FAULT (KVM_RUN: EFAULT) gpa=0x100000000 size=0x1000 flags=private");
  dv.setBigUint64(32, 0n, true);
  eq(describeExit(x).memoryFault?.flagNames, "shared");
  eq(describeExit(x).memoryFault?.private, false);
});

Deno.test("DEBUG and EXCEPTION", () => {
  const { dv, x } = fake(EXIT.DEBUG);
  dv.setUint32(32, 1, true);
  dv.setBigUint64(40, 0x10002n, true);
  dv.setBigUint64(48, 0xffff4ff0n, true);
  dv.setBigUint64(56, 0x400n, true);
  eq(describeExit(x).debug, { exception: 1, pc: 0x10002n, dr6: 0xffff4ff0n, dr7: 0x400n });
  const e = fake(EXIT.EXCEPTION);
  e.dv.setUint32(32, 13, true);
  e.dv.setUint32(36, 0x18, true);
  eq(describeExit(e.x).exception, { nr: 13, errorCode: 0x18 });
});

Deno.test("exitToJSON turns bigints into hex strings", () => {
  const { dv, x } = fake(EXIT.MMIO);
  dv.setBigUint64(32, 0xfee00000n, true);
  dv.setUint32(48, 4, true);
  const j = exitToJSON(describeExit(x)) as { mmio: { addr: string } };
  eq(j.mmio.addr, "0xfee00000");
  ok(JSON.stringify(j));
});

/** An IO exit in a fake kvm_run, for the guest ABI's port handling (no vCPU needed for these ports). */
function io(port: number, out: boolean, value: number, size = 1) {
  const f = fake(EXIT.IO);
  f.dv.setUint8(32, out ? 1 : 0);
  f.dv.setUint8(33, size);
  f.dv.setUint16(34, port, true);
  f.dv.setUint32(36, 1, true);
  f.dv.setBigUint64(40, 4096n, true);
  if (out) f.dv.setUint32(4096, value, true);
  return f;
}
const noVcpu = undefined as unknown as Vcpu;

Deno.test("guest ABI: 0xE9 console, 16550 THR/LSR/DLAB, isa-debug-exit status, unhandled ports", () => {
  const abi = new GuestAbi();
  for (const c of "hi") eq(abi.io(io(PORT.CONSOLE, true, c.charCodeAt(0)).x, noVcpu), true);
  eq(abi.io(io(PORT.COM1, true, 0x21).x, noVcpu), true);
  const lsr = io(PORT.COM1 + 5, false, 0);
  abi.io(lsr.x, noVcpu);
  eq(lsr.dv.getUint8(4096), 0x60);
  abi.io(io(PORT.COM1 + 3, true, 0x80).x, noVcpu); // DLAB on: THR writes are the divisor
  abi.io(io(PORT.COM1, true, 0x01).x, noVcpu);
  abi.io(io(PORT.COM1 + 3, true, 0x03).x, noVcpu);
  eq(abi.console, "hi!");
  eq(abi.io(io(PORT.EXIT, true, 3).x, noVcpu), "exit-code");
  eq(abi.exitCode, { value: 3, status: 7 });
  eq(abi.io(io(0x60, true, 1).x, noVcpu), "unhandled-io");
  abi.unhandledIo = "ignore";
  const inb = io(0x60, false, 0);
  eq(abi.io(inb.x, noVcpu), true);
  eq(inb.dv.getUint8(4096), 0xff);
});

Deno.test("a failed KVM_RUN: EINTR is INTR; EFAULT/EHWPOISON with MEMORY_FAULT is an exit; the rest are errors", () => {
  eq(classifyRunFailure(4, EXIT.IO), EXIT.INTR);
  eq(classifyRunFailure(14, EXIT.MEMORY_FAULT), EXIT.MEMORY_FAULT);
  eq(classifyRunFailure(133, EXIT.MEMORY_FAULT), EXIT.MEMORY_FAULT);
  eq(classifyRunFailure(14, EXIT.MMIO), -1, "EFAULT without the exit reason is a real error");
  eq(classifyRunFailure(22, EXIT.MEMORY_FAULT), -1);
});
