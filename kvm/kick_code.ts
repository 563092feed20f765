/**
 * The vCPU kick's two signal handlers, as x86-64 machine code (kick.ts copies them into an
 * executable page once per isolate). They run in signal context, so they are a few instructions
 * and raw syscalls — no JS, no libc, nothing that could re-enter V8.
 *
 * - `usr2` (the kick signal, SIGUSR2): does nothing. Its only job is to exist, so the signal
 *   interrupts KVM_RUN (EINTR) instead of killing the process, and a late kick is harmless.
 * - `sigint` (installed only while an interruptible run is armed): counts the SIGINT; if a run is
 *   armed it claims it (STATE gen → -1, so the loop cannot unmap kvm_run meanwhile), records the
 *   stop cause, sets kvm_run.immediate_exit and tgkill()s the vCPU thread with SIGUSR2 — on any
 *   thread the kernel picked. While a hold is in force (HOLD > 0) that is all: the holder reads
 *   the count. Otherwise it hands the signal on to the handler it replaced (Deno's, which
 *   dispatches to JS listeners), or, with no run armed and SIG_DFL before it, restores SIG_DFL
 *   and re-raises (a stale handler behaves as the default).
 *
 * {@link KICK_ASM} is the source (AT&T syntax, offsets from kick_shared.ts); {@link KICK_CODE}
 * is what `as --64` makes of it (tests/unit/kick_code_test.ts reassembles it when `as` exists).
 * @module
 */

import { CELL, CELL_BYTES, STOP_CODE } from "./kick_shared.ts";
import { SIG, SIGSET_BYTES, SYS } from "../ffi/libc.ts";
import { fromHex } from "../ffi/hex.ts";

/** The data block's address in the code: an imm64 kick.ts patches (this placeholder before). */
export const DATA_PLACEHOLDER = 0x1122334455667788n;

/** Offsets of the two entry points in {@link KICK_CODE}. */
export const ENTRY = Object.freeze({ usr2: 0, sigint: 16 });

const i = (cell: number) => cell * 4;

/** The handlers' source. */
export const KICK_ASM = `
	.text
usr2:
	ret
	.balign 16
sigint:
	movabs $${DATA_PLACEHOLDER}, %r12
	mov %rdi, %r8
	mov %rsi, %r9
	mov %rdx, %r10
	lock incl ${i(CELL.SIGINTS)}(%r12)
	mov ${i(CELL.STATE)}(%r12), %eax
	mov %eax, %r14d
	test %eax, %eax
	jle 2f
	mov %eax, %r13d
	mov $-1, %ecx
	lock cmpxchg %ecx, ${i(CELL.STATE)}(%r12)
	jne 2f
	movl $${STOP_CODE.interrupt}, ${i(CELL.STOP)}(%r12)
	mov ${CELL_BYTES.RUN}(%r12), %rcx
	movb $1, (%rcx)
	mov ${i(CELL.PID)}(%r12), %edi
	mov ${i(CELL.TID)}(%r12), %esi
	mov $${SIG.USR2}, %edx
	mov $${SYS.tgkill}, %eax
	syscall
	lock incl ${i(CELL.KICKS)}(%r12)
	mov %r13d, ${i(CELL.STATE)}(%r12)
2:
	cmpl $0, ${i(CELL.HOLD)}(%r12)
	jne 5f
	mov ${CELL_BYTES.OLD}(%r12), %rax
	cmp $1, %rax
	ja 3f
	jb 4f
	ret
3:
	mov %r8, %rdi
	mov %r9, %rsi
	mov %r10, %rdx
	jmp *%rax
4:
	test %r14d, %r14d
	jnz 5f
	mov $${SYS.rt_sigaction}, %eax
	mov $${SIG.INT}, %edi
	lea ${CELL_BYTES.DFL_ACTION}(%r12), %rsi
	xor %edx, %edx
	mov $${SIGSET_BYTES}, %r10d
	syscall
	mov $${SYS.kill}, %eax
	mov ${i(CELL.PID)}(%r12), %edi
	mov $${SIG.INT}, %esi
	syscall
5:
	ret
`;

/** {@link KICK_ASM} assembled. */
export const KICK_CODE: Uint8Array = fromHex(
  "c366662e0f1f8400000000000f1f400049bc88776655443322114989f84989f14989d2f041ff442408418b04244189c685c07e41" +
    "4189c5b9fffffffff0410fb10c24753141c744240403000000498b4c2420c60101418b7c2410418b742414ba0c000000b8ea0000" +
    "000f05f041ff44240c45892c2441837c2418007548498b4424284883f8017703720cc34c89c74c89ce4c89d2ffe04585f6752ab8" +
    "0d000000bf02000000498d74243031d241ba080000000f05b83e000000418b7c2410be020000000f05c3",
);
