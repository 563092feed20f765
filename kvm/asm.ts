/**
 * Inline assembly for scenarios: GNU `as` + `ld --oformat binary` on demand, the flat result
 * cached by the hash of (mode, origin, source) under `$XDG_CACHE_HOME/kvmsh/asm` (or
 * `~/.cache/kvmsh/asm`), so a scenario needs no separate file and no compiler once cached.
 * @module
 */

import { sha256Hex } from "./sha256.ts";
import { InterruptedError } from "./errors.ts";
import { LONG_MODE_LAYOUT } from "./loaders/long_mode.ts";

/** Options of {@link assemble}. */
export interface AsmOptions {
  /** `real` prepends `.code16`, `long` `.code64` (default long). */
  mode?: "real" | "long";
  /** Link address of the first byte (default: 0 for real mode, 0x100000 for long mode). */
  origin?: bigint;
}

/** The cache directory for assembled snippets. */
export function asmCacheDir(): string {
  const base = Deno.env.get("XDG_CACHE_HOME") || `${Deno.env.get("HOME") ?? "/tmp"}/.cache`;
  return `${base}/kvmsh/asm`;
}

function run(cmd: string, args: string[]): void {
  let out: Deno.CommandOutput;
  try {
    out = new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).outputSync();
  } catch (e) {
    throw new Error(`cannot run ${cmd}: ${(e as Error).message} (binutils needed to assemble inline asm)`);
  }
  // A Ctrl-C reaches `as` too (the terminal's foreground process group): that is no assembler error.
  if (out.signal === "SIGINT") throw new InterruptedError(`while ${cmd} ran`);
  if (!out.success) {
    throw new Error(`${cmd} failed:\n${new TextDecoder().decode(out.stderr).trim()}`);
  }
}

/** Where a snippet is linked by default: real mode at 0, long mode where the flat loader puts an image. */
function defaultOrigin(mode: "real" | "long"): bigint {
  return mode === "real" ? 0n : LONG_MODE_LAYOUT.image;
}

/** The cache key of a snippet. */
export function asmKey(source: string, o: AsmOptions = {}): string {
  const mode = o.mode ?? "long";
  const origin = o.origin ?? defaultOrigin(mode);
  return sha256Hex(`${mode}\n${origin}\n${source}`).slice(0, 32);
}

/**
 * Assembles `source` (AT&T syntax) into a flat binary linked at `origin`. Cached by content
 * hash; `cached` says whether the cache answered. The work directory (`$TMPDIR/kvmsh-asm-*`) is
 * removed whatever happens; an assembler or linker that dies of SIGINT throws InterruptedError.
 */
export function assemble(source: string, o: AsmOptions = {}): { bytes: Uint8Array; cached: boolean; path: string } {
  const mode = o.mode ?? "long";
  const origin = o.origin ?? defaultOrigin(mode);
  const dir = asmCacheDir();
  const path = `${dir}/${asmKey(source, o)}.bin`;
  try {
    return { bytes: Deno.readFileSync(path), cached: true, path };
  } catch { /* not cached yet */ }
  Deno.mkdirSync(dir, { recursive: true });
  const tmp = Deno.makeTempDirSync({ prefix: "kvmsh-asm-" });
  try {
    const src = `${tmp}/a.S`;
    Deno.writeTextFileSync(
      src,
      `${mode === "real" ? ".code16" : ".code64"}\n.text\n.globl _start\n_start:\n${source}\n`,
    );
    run("as", ["--64", "-o", `${tmp}/a.o`, src]);
    run("ld", [
      "-m",
      "elf_x86_64",
      "--oformat",
      "binary",
      `-Ttext=0x${origin.toString(16)}`,
      "-e",
      "_start",
      "-o",
      `${tmp}/a.bin`,
      `${tmp}/a.o`,
    ]);
    const bytes = Deno.readFileSync(`${tmp}/a.bin`);
    const part = `${path}.${Deno.pid}`;
    try {
      Deno.writeFileSync(part, bytes);
      Deno.renameSync(part, path);
    } catch {
      // A cache that cannot be written (read-only home) only costs the next run an `as`.
      try {
        Deno.removeSync(part);
      } catch { /* not there */ }
    }
    return { bytes, cached: false, path };
  } finally {
    try {
      Deno.removeSync(tmp, { recursive: true });
    } catch { /* gone already */ }
  }
}
