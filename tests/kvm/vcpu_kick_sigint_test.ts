/**
 * Ctrl-C without a Worker: the kick's SIGINT handler stops a spinning guest within 100 ms, the VM
 * runs again, the process's own SIGINT listener (if it has one) still hears the Ctrl-C, and after
 * the run SIGINT does what it did before (the listener takes it; without one the process ends).
 */

import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { kvmTest } from "../kvm_env.ts";

async function sigintTwice(mode: "listener" | "default") {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "--allow-all", new URL("./vcpu_kick_sigint_child.ts", import.meta.url).pathname, mode],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  const readUntil = async (want: (s: string) => boolean) => {
    while (!want(out)) {
      const { value, done } = await reader.read();
      if (done) return;
      out += value;
    }
  };
  const killer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  try {
    await readUntil((s) => s.includes("ready\n"));
    ok(out.includes("ready"), out);
    await new Promise((r) => setTimeout(r, 300)); // the guest spins
    const sentAt = performance.timeOrigin + performance.now();
    child.kill("SIGINT");
    await readUntil((s) => s.split("\n").some((l) => l.startsWith("{")));
    const first = JSON.parse(out.split("\n").find((l) => l.startsWith("{"))!);
    child.kill("SIGINT");
    await readUntil(() => false);
    const status = await child.status;
    return { first, sentAt, lines: out.trim().split("\n"), status, stderr: await stderr };
  } finally {
    clearTimeout(killer);
  }
}

kvmTest("Ctrl-C stops a spinning guest within 100 ms; the process's own SIGINT listener hears it too", async () => {
  const { first, sentAt, lines, status, stderr } = await sigintTwice("listener");
  eq([first.stop, first.exit], ["interrupt", "INTR"], stderr);
  const latency = first.stoppedAt - sentAt;
  ok(latency < 100, `stopped ${latency.toFixed(1)} ms after the SIGINT`);
  eq(first.again, { value: 3, status: 7 });
  eq(first.heard, 1, "the listener heard the Ctrl-C that stopped the run");
  eq(first.workerStarts, 0);
  eq(JSON.parse(lines.at(-1)!), { heard: 2 }, "a later SIGINT goes to the listener");
  eq(status.code, 0, stderr);
});

kvmTest(
  "Ctrl-C stops a spinning guest; with no SIGINT listener a later Ctrl-C ends the process (default restored)",
  async () => {
    const { first, sentAt, lines, status, stderr } = await sigintTwice("default");
    eq([first.stop, first.exit], ["interrupt", "INTR"], stderr);
    ok(first.stoppedAt - sentAt < 100, `stopped ${(first.stoppedAt - sentAt).toFixed(1)} ms after the SIGINT`);
    eq(first.again, { value: 3, status: 7 });
    eq(first.heard, 0);
    ok(!lines.some((l) => l.includes("survived")), lines.join("\n"));
    eq(status.signal, "SIGINT", `ended ${JSON.stringify(status)}`);
  },
);
