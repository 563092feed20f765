/**
 * Runs a child test script that prints `ready` once its guest spins, waits `waitMs`, sends it
 * SIGINT, and returns how it ended: exit status, stderr, its JSON result line, and the time from
 * the SIGINT to its exit. The child is SIGKILLed after 20 s so a hang fails the test, not the suite.
 */
export interface SigintChildResult {
  code: number;
  stderr: string;
  // deno-lint-ignore no-explicit-any
  result: any;
  msAfterSigint: number;
}

/** Spawns `script` (a URL next to the caller), interrupts it after `waitMs` of spinning. */
export async function interruptChild(script: URL, waitMs: number): Promise<SigintChildResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "--allow-all", script.pathname],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  const killer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  try {
    while (!out.includes("ready\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the child ended before it was ready: ${out}`);
      out += value;
    }
    await new Promise((r) => setTimeout(r, waitMs));
    const t0 = performance.now();
    child.kill("SIGINT");
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    const status = await child.status;
    const stderr = await new Response(child.stderr).text();
    const line = out.split("\n").find((l) => l.startsWith("{"));
    return {
      code: status.code,
      stderr,
      result: line ? JSON.parse(line) : undefined,
      msAfterSigint: performance.now() - t0,
    };
  } finally {
    clearTimeout(killer);
  }
}
