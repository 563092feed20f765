/**
 * How the shell shows what a guest did: console lines, one line per ucall, and where the vCPU
 * is (RIP and the instruction bytes there).
 * @module
 */

import { type CodeAt, type Conversion, hex, type Ucall } from "../../core.ts";
import { hexBytes, out } from "../output.ts";

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

/**
 * What `run`, `continue` and `step` show of a guest's ucalls and console: in text mode each ucall
 * prints its {@link ucallLine} as it happens, and the console lines keep only the bytes the guest
 * wrote to its console ports (a ucall print's text is shown once, as its `ucall print:` line);
 * with `--json` nothing is printed live (the result has `ucalls` and `console`).
 */
export function guestOutput(json: boolean): {
  /** The run's callbacks (none with `--json`). */
  callbacks: { onUcall?: (u: Ucall) => void; onConsole?: (b: number) => void };
  /** The console text to show for a run whose result console is `console`. */
  consoleText(console: string): string;
} {
  if (json) return { callbacks: {}, consoleText: (c) => c };
  let skip = 0;
  const ports: number[] = [];
  return {
    callbacks: {
      onUcall: (u) => {
        out(ucallLine(u));
        if (u.cmd === "print") skip += new TextEncoder().encode(u.message).length;
      },
      onConsole: (b) => {
        if (skip > 0) skip--;
        else ports.push(b);
      },
    },
    consoleText: () => new TextDecoder().decode(new Uint8Array(ports)),
  };
}

/** A few instructions a stopped guest is often found on, by their first bytes (no disassembler). */
const KNOWN: [number[], string][] = [
  [[0x0f, 0x01, 0xc1], "vmcall"],
  [[0x0f, 0x01, 0xd9], "vmmcall"],
  [[0xeb, 0xfe], "jmp ."],
  [[0xf3, 0x90], "pause"],
  [[0xf4], "hlt"],
  [[0x0f, 0x0b], "ud2"],
];

/** The name of the instruction the bytes start with, when it is one of {@link KNOWN}. */
export function knownInstruction(b: Uint8Array): string | undefined {
  return KNOWN.find(([p]) => p.length <= b.length && p.every((x, i) => b[i] === x))?.[1];
}

/** `rip 0x4 (real mode, cs:ip 0x1000:0x4, linear 0x10004, gpa 0x10004): 90 b0 41 …` (and `(vmcall)` when known). */
export function codeLine(c: CodeAt): string {
  const where = c.mode === "real"
    ? `real mode, cs:ip ${hex(c.cs.selector)}:${hex(c.rip)}, linear ${hex(c.linear)}`
    : `${c.mode} mode, linear ${hex(c.linear)}`;
  const gpa = c.gpa === undefined ? "" : `, gpa ${hex(c.gpa)}`;
  const known = c.bytes && knownInstruction(c.bytes);
  const bytes = c.bytes ? hexBytes(c.bytes) + (known ? ` (${known})` : "") : `bytes not readable (${c.note})`;
  return `rip ${hex(c.rip)} (${where}${gpa}): ${bytes}`;
}

/** `hypercall MAP_GPA_RANGE gpa 0x100000000 npages 0x1 (decrypted) → shared: ENOTTY (guest RAX 0x…)` */
export function conversionLine(c: Conversion): string {
  return `hypercall MAP_GPA_RANGE gpa ${hex(c.gpa)} npages ${hex(c.npages)} (${c.attrNames}) → ${c.to}: ${c.result}${
    c.result === "ok" ? "" : ` (guest RAX ${hex(c.ret)})`
  }`;
}
