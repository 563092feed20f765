/**
 * How the shell shows what a guest did: console lines, one line per ucall, and where the vCPU
 * is (RIP and the instruction bytes there).
 * @module
 */

import { type CodeAt, hex, type Ucall } from "../../mod.ts";

/** Console text as `console: …` lines. */
export function consoleLines(text: string): string[] {
  return text ? text.replace(/\n$/, "").split("\n").map((l) => `console: ${l}`) : [];
}

/**
 * One line per ucall: `ucall print: hello`, `ucall sync: 0x1`, `ucall done: 0x10`,
 * `ucall assert: <message>; values 0x200000 0x0`. The block has four u64 args; the shown ones
 * are the first (the first two for assert, the guest ABI's two values) and any non-zero after.
 */
export function ucallLine(u: Ucall): string {
  const keep = u.cmd === "assert" ? 2 : 1;
  let n = u.args.length;
  while (n > keep && u.args[n - 1] === 0n) n--;
  const values = u.args.slice(0, n).map((v) => hex(v)).join(" ");
  const msg = u.message.replace(/\n+$/, "").replace(/\n/g, "\\n");
  const name = u.cmd === "unknown" ? `#${u.nr}` : u.cmd;
  switch (u.cmd) {
    case "print":
      return `ucall print: ${msg}`;
    case "assert":
      return `ucall assert: ${msg || "(no message)"}; values ${values}`;
    default:
      return `ucall ${name}: ${values}${msg ? ` "${msg}"` : ""}`;
  }
}

/** `rip 0x4 (real mode, cs:ip 0x1000:0x4, linear 0x10004, gpa 0x10004): 90 b0 41 …` */
export function codeLine(c: CodeAt): string {
  const where = c.mode === "real"
    ? `real mode, cs:ip ${hex(c.cs.selector)}:${hex(c.rip)}, linear ${hex(c.linear)}`
    : `${c.mode} mode, linear ${hex(c.linear)}`;
  const gpa = c.gpa === undefined ? "" : `, gpa ${hex(c.gpa)}`;
  const bytes = c.bytes
    ? [...c.bytes].map((b) => b.toString(16).padStart(2, "0")).join(" ")
    : `bytes not readable (${c.note})`;
  return `rip ${hex(c.rip)} (${where}${gpa}): ${bytes}`;
}
