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
