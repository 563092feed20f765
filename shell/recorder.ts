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

/** The script's first lines: imports, a scenario around the session, and two small helpers. */
export function header(source: string): string[] {
  return [
    `// Recorded by kvmsh on ${new Date().toISOString()} to ${str(source)}.`,
    "// Replay: ./deno run -A <this file>, or ./kvmsh scenario <this file> (KTAP; non-zero exit when an answer differs).",
    `import * as kvmsh from ${str(MOD_URL)};`,
    "",
    "/** Hex text → bytes (what the recorded session read). */",
    "function unhex(h: string): Uint8Array {",
    "  return new Uint8Array((h.match(/../g) ?? []).map((x) => parseInt(x, 16)));",
    "}",
    "",
    "/** Expects a non-kernel error (no memslot at a GPA, a closed object) by its class name. */",
    "async function expectThrows(name: string, fn: () => unknown, claim: string): Promise<void> {",
    '  let got = "success";',
    "  try {",
    "    await fn();",
    "  } catch (e) {",
    "    got = e instanceof Error ? e.name : String(e);",
    "  }",
    "  kvmsh.expectTrue(got === name, `${claim} throws ${name}`, `got ${got}`);",
    "}",
    "",
    'kvmsh.scenario("recorded kvmsh session", async (t) => {',
    "  const kvm = t.kvm;",
  ];
}

/** The script's last lines. */
export function footer(): string[] {
  return ["});", ""];
}

/**
 * The statements for one command: a comment with the command line (as a JSON string, so it
 * cannot end the comment), then the calls — bound to the object's name, checked against what
 * was observed, or wrapped in an expectation of the error the live session got. Claims are the
 * generated call text, never user text.
 */
export function statements(words: string[], recs: Recorded[], result: { out?: Outcome; error?: unknown }): string[] {
  const lines = [`// kvmsh> ${str(words.join(" "))}`];
  if (!recs.length) return lines.map(indent);
  if (result.error !== undefined) {
    const anyAsync = recs.some((r) => r.async);
    const body = recs.length === 1 && !anyAsync
      ? recs[0].expr
      : `{ ${recs.map((r) => `${r.async ? "await " : ""}${r.expr};`).join(" ")} }`;
    const fn = `${anyAsync ? "async " : ""}() => ${body}`;
    const e = result.error;
    const aw = anyAsync ? "await " : "";
    if (e instanceof KvmError) lines.push(`${aw}kvmsh.expectErrno(${str(e.errnoName)}, ${fn});`);
    else {
      const claim = str(recs.map((r) => r.expr).join("; "));
      lines.push(`await expectThrows(${str(e instanceof Error ? e.name : "Error")}, ${fn}, ${claim});`);
    }
    return lines.map(indent);
  }
  const out = result.out ?? {};
  recs.forEach((r, i) => {
    const call = `${r.async ? "await " : ""}${r.expr}`;
    if (out.bind && i === 0) {
      lines.push(`const ${ident(out.bind)} = ${call};`);
      if (r.check) lines.push(...r.check(out.bind, out, r.expr));
    } else if (r.check) {
      const checks = r.check("r", out, r.expr);
      lines.push(checks.length ? `{ const r = ${call}; ${checks.join(" ")} }` : `${call};`);
    } else lines.push(`${call};`);
  });
  return lines.map(indent);
}

function indent(l: string): string {
  return `  ${l}`;
}

/** An open recording. */
export class Recorder {
  #file: Deno.FsFile | undefined;
  readonly #enc = new TextEncoder();
  count = 0;

  /**
   * Creates the file and writes the header and the session so far (so names defined earlier exist).
   * An existing file is replaced only with `overwrite` (else Deno.errors.AlreadyExists).
   */
  constructor(readonly path: string, before: string[], overwrite = false) {
    this.#file = Deno.openSync(
      path,
      overwrite ? { write: true, create: true, truncate: true } : { write: true, createNew: true },
    );
    this.#write(header(path));
    if (before.length) {
      this.#write([
        "  // --- the session before `record start`, so every object used below exists ---",
        ...before,
        "  // --- recording ---",
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
