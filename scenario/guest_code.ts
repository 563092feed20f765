/**
 * Guest code the scenario library shares (inline assembly for `runGuest({ asm })`, assembled on
 * demand): small enough to read in a bug report.
 * @module
 */

/**
 * The guest half of upstream guest_memfd_test's guest check, in long mode: every byte of
 * [rdi, rdi+rsi) must equal dl, then the range is overwritten with cl and the guest halts (HLT).
 * A byte that differs is written to port 0xF4 (isa-debug-exit) instead.
 */
export const GUEST_VERIFY_THEN_FILL = `
  xor %rbx, %rbx
1: cmp %rsi, %rbx
  jae 2f
  movzbl (%rdi,%rbx), %eax
  cmp %dl, %al
  jne 3f
  inc %rbx
  jmp 1b
2: mov %rcx, %rax
  mov %rsi, %rcx
  cld
  rep stosb
  hlt
3: mov $0xf4, %dx
  out %al, (%dx)
  hlt
`;
