/**
 * The recorder: the session's journal (journal.ts: every command that ran as the equivalent
 * mod.ts call) written to a self-contained scenario, so the file replays the session
 * (`./kvmsh scenario file.ts`). Loaded by `record start` only.
 * @module
 */

import { str } from "./ts_literal.ts";

/** The URL a recorded script imports the API from. */
export const MOD_URL: string = new URL("../mod.ts", import.meta.url).href;

/** The script's first lines: imports, a scenario around the session, and two small helpers. */
export function header(source: string): string[] {
  return [
    `// Recorded by kvmsh on ${new Date().toISOString()} to ${str(source)}.`,
    "// Replay: ./kvmsh scenario <this file> (KTAP; non-zero exit when an answer differs).",
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
