/**
 * Builds the C baselines from bench/c/ with gcc into a cache directory (never into the repo).
 * The directory is keyed by a hash of the sources and generated headers, so an edit rebuilds.
 * @module
 */

import { sha256Hex } from "../kvm/sha256.ts";
import { uapiHeader } from "./c_header.ts";
import { guestsHeader } from "./guests.ts";

const C_DIR = new URL("./c/", import.meta.url);

/** The C baselines, by program name. */
export const PROGRAMS = ["ioctl", "pio", "mmio", "setup", "fill", "punch", "hello"] as const;
/** One C baseline's name. */
export type Program = typeof PROGRAMS[number];

/** Where built binaries go: $KVMSH_BENCH_CACHE, else $TMPDIR/kvmsh-bench. */
export function cacheRoot(): string {
  return Deno.env.get("KVMSH_BENCH_CACHE") ?? `${Deno.env.get("TMPDIR") ?? "/tmp"}/kvmsh-bench`;
}

/** Compiles every program (once per source hash) and returns program → binary path. */
export async function buildBaselines(cc = Deno.env.get("CC") ?? "gcc"): Promise<Record<Program, string>> {
  const files: Record<string, string> = {
    "kvmsh_uapi.h": uapiHeader(),
    "kvmsh_guests.h": guestsHeader(),
  };
  for await (const e of Deno.readDir(C_DIR)) {
    if (e.isFile && /\.(c|h)$/.test(e.name)) files[e.name] = await Deno.readTextFile(new URL(e.name, C_DIR));
  }
  const key = sha256Hex(cc + JSON.stringify(Object.entries(files).sort())).slice(0, 16);
  const dir = `${cacheRoot()}/${key}`;
  await Deno.mkdir(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) await Deno.writeTextFile(`${dir}/${name}`, text);
  const out = {} as Record<Program, string>;
  await Promise.all(PROGRAMS.map(async (p) => {
    const bin = `${dir}/${p}`;
    out[p] = bin;
    try {
      await Deno.stat(bin);
      return;
    } catch { /* not built yet */ }
    const r = await new Deno.Command(cc, {
      args: ["-O2", "-Wall", "-Wextra", "-pthread", "-o", `${bin}.tmp`, `${dir}/${p}.c`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!r.success) throw new Error(`${cc} ${p}.c failed:\n${new TextDecoder().decode(r.stderr)}`);
    await Deno.rename(`${bin}.tmp`, bin);
  }));
  return out;
}
