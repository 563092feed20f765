/**
 * The recorder: every command that ran becomes the equivalent mod.ts call in a self-contained
 * Deno script, so the file replays the session (`./deno run -A file.ts`). Failed commands become
 * expect-errno steps; reads become checks of the bytes the live session saw. User text reaches
 * the file only through ts_literal.ts (JSON strings, bigint literals), never as code.
 * @module
 */

import { KvmError } from "../mod.ts";
import { ident, str } from "./ts_literal.ts";
import type { Outcome, Recorded } from "./commands/types.ts";

/** The URL a recorded script imports the API from. */
export const MOD_URL: string = new URL("../mod.ts", import.meta.url).href;

/** The script's first lines: imports, the Kvm, and the check helpers. */
export function header(source: string): string[] {
  return [
    `// Recorded by kvmsh on ${new Date().toISOString()} from ${str(source).slice(1, -1).replace(/\*\//g, "* /")}.`,
    "// Replay: ./deno run -A <this file>   (exits non-zero when the kernel answers differently)",
    `import * as kvmsh from ${str(MOD_URL)};`,
    "",
    "const kvm = kvmsh.openKvm();",
    "function expectEqual(got: unknown, want: unknown, what: string): void {",
    "  if (got !== want) throw new Error(`${what}: got ${String(got)}, the recorded session saw ${String(want)}`);",
    "}",
    "function expectBytes(got: Uint8Array, want: string): void {",
    '  const hex = [...got].map((b) => b.toString(16).padStart(2, "0")).join("");',
    "  if (hex !== want) throw new Error(`bytes: got ${hex}, the recorded session saw ${want}`);",
    "}",
    "async function expectErrno(errno: string, fn: () => unknown): Promise<void> {",
    "  try {",
    "    await fn();",
    "  } catch (e) {",
    "    if (e instanceof kvmsh.KvmError && e.errnoName === errno) return;",
    "    throw e;",
    "  }",
    "  throw new Error(`expected ${errno}, but the call succeeded`);",
    "}",
    "async function expectThrows(name: string, fn: () => unknown): Promise<void> {",
    "  try {",
    "    await fn();",
    "  } catch (e) {",
    "    if (e instanceof Error && e.name === name) return;",
    "    throw e;",
    "  }",
    "  throw new Error(`expected ${name}, but the call succeeded`);",
    "}",
    "",
  ];
}

/** The script's last lines. */
export function footer(): string[] {
  return ["", "kvm.close();", 'console.log("replayed: every call gave the recorded answer");', ""];
}

/**
 * The statements for one command: a comment with the command line (as a JSON string, so it
 * cannot end the comment), then the calls — bound to the object's name, checked against what
 * was observed, or wrapped in an expectation of the error the live session got.
 */
export function statements(words: string[], recs: Recorded[], result: { out?: Outcome; error?: unknown }): string[] {
  const lines = [`// kvmsh> ${str(words.join(" "))}`];
  if (!recs.length) return lines;
  if (result.error !== undefined) {
    const body = recs.map((r) => `${r.async ? "await " : ""}${r.expr};`).join(" ");
    const e = result.error;
    if (e instanceof KvmError) lines.push(`await expectErrno(${str(e.errnoName)}, async () => { ${body} });`);
    else lines.push(`await expectThrows(${str(e instanceof Error ? e.name : "Error")}, async () => { ${body} });`);
    return lines;
  }
  const out = result.out ?? {};
  recs.forEach((r, i) => {
    const call = `${r.async ? "await " : ""}${r.expr}`;
    if (out.bind && i === 0) {
      lines.push(`const ${ident(out.bind)} = ${call};`);
      if (r.check) lines.push(...r.check(out.bind, out));
    } else if (r.check) {
      const checks = r.check("r", out);
      lines.push(checks.length ? `{ const r = ${call}; ${checks.join(" ")} }` : `${call};`);
    } else lines.push(`${call};`);
  });
  return lines;
}

/** An open recording. */
export class Recorder {
  #file: Deno.FsFile | undefined;
  readonly #enc = new TextEncoder();
  count = 0;

  /** Creates the file and writes the header and the session so far (so names defined earlier exist). */
  constructor(readonly path: string, before: string[]) {
    this.#file = Deno.openSync(path, { write: true, create: true, truncate: true });
    this.#write(header(path));
    if (before.length) {
      this.#write([
        "// --- the session before `record start`, so every object used below exists ---",
        ...before,
        "// --- recording ---",
      ]);
    }
  }

  #write(lines: string[]): void {
    const b = this.#enc.encode(lines.join("\n") + "\n");
    let off = 0;
    while (off < b.length) off += this.#file!.writeSync(b.subarray(off));
  }

  /** Appends one command's statements. */
  append(lines: string[]): void {
    if (!this.#file) return;
    this.#write(lines);
    this.count++;
  }

  /** Writes the footer and closes the file; safe to call twice. */
  stop(): void {
    if (!this.#file) return;
    this.#write(footer());
    this.#file.close();
    this.#file = undefined;
  }

  /** True until stopped. */
  get active(): boolean {
    return this.#file !== undefined;
  }
}
