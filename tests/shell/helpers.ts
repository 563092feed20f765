/**
 * Runs the real kvmsh process for the e2e tests.
 * @module
 */

/** The repo root. */
export const ROOT = new URL("../../", import.meta.url).pathname;
/** The launcher. */
export const KVMSH = `${ROOT}kvmsh`;

/** What a run gave. */
export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `kvmsh args…` with optional stdin text; NO_COLOR and a throw-away history file. */
export async function kvmsh(args: string[], stdin?: string, env: Record<string, string> = {}): Promise<Run> {
  const cmd = new Deno.Command(KVMSH, {
    args,
    cwd: env.CWD ?? ROOT,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", KVMSH_HISTORY: "/dev/null", ...env },
  });
  const child = cmd.spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const o = await child.output();
  const dec = new TextDecoder();
  return { code: o.code, stdout: dec.decode(o.stdout), stderr: dec.decode(o.stderr) };
}

/** `kvmsh -c "<lines joined by ;>"`. */
export function runC(lines: string[], extra: string[] = []): Promise<Run> {
  return kvmsh([...extra, "-c", lines.join("; ")]);
}

/** The same lines piped on stdin. */
export function runStdin(lines: string[], extra: string[] = []): Promise<Run> {
  return kvmsh(extra, lines.join("\n") + "\n");
}

/**
 * Output with what legitimately differs between two runs of the same commands replaced: fd
 * numbers (`fd 23`, `fd=23`), mmap addresses (0x7f…), inode numbers and timings (`… in 1.2 ms`).
 * Everything else — names, sizes, counts, errnos — stays, so a comparison still catches them.
 */
export function normalise(s: string): string {
  return s
    .replace(/\bfd([ =])\d+\b/g, "fd$1N")
    .replace(/\b0x7[0-9a-f]{11}\b/g, "ADDR") // mmap picks from the top of the 47-bit space down: 0x7f…, 0x7e…
    .replace(/\bino \d+/g, "ino N")
    .replace(/\b\d+(\.\d+)? ms\b/g, "T ms");
}
