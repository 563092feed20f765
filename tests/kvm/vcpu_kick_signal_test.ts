/**
 * The vCPU kick's signal must not open a debugger: Deno (like Node) starts its V8 inspector on
 * 127.0.0.1:9229 when the process gets SIGUSR1, listener or not. A child process runs guests that
 * the watchdog kicks (timeout) and takes a late kick; then no socket of the child listens on
 * 9229, its stderr names no inspector, the kicked runs stopped promptly with EINTR, and the
 * late kick did not kill it.
 */

import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { kvmTest } from "../kvm_env.ts";
import { listDir, readLink, readProcText } from "../../ffi/procfs.ts";

const INSPECTOR_PORT = 9229;
const TCP_LISTEN = "0A";

/** Inodes of the sockets listening on `port` in `pid`'s network namespace (tcp and tcp6). */
export function listeningInodes(pid: number, port: number): Set<string> {
  const out = new Set<string>();
  for (const table of ["tcp", "tcp6"]) {
    const text = readProcText(`/proc/${pid}/net/${table}`, 1 << 22) ?? "";
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const localPort = parseInt(f[1].split(":")[1], 16);
      if (localPort === port && f[3] === TCP_LISTEN) out.add(f[9]);
    }
  }
  return out;
}

/** The socket inodes `pid` holds open (from /proc/<pid>/fd links `socket:[inode]`). */
export function socketInodes(pid: number): Set<string> {
  const out = new Set<string>();
  for (const fd of listDir(`/proc/${pid}/fd`) ?? []) {
    const m = /^socket:\[(\d+)\]$/.exec(readLink(`/proc/${pid}/fd/${fd}`) ?? "");
    if (m) out.add(m[1]);
  }
  return out;
}

kvmTest(
  "kicked runs open no inspector (no LISTEN on 9229, no 'inspector' on stderr); a late kick is harmless",
  async () => {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "--allow-all", new URL("./vcpu_kick_child.ts", import.meta.url).pathname],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderrText = new Response(child.stderr).text();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    while (!out.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    let listening: string[] = [];
    let held: Set<string> = new Set();
    if (out.includes("\n")) {
      listening = [...listeningInodes(child.pid, INSPECTOR_PORT)];
      held = socketInodes(child.pid);
    }
    await child.stdin.close();
    await reader.cancel();
    const status = await child.status;
    const err = await stderrText;
    ok(out.includes("\n"), `child printed nothing (status ${JSON.stringify(status)}); stderr: ${err}`);
    const report = JSON.parse(out.trim()) as {
      pid: number;
      runs: { stop: string; exit: string; errno?: string; ms: number }[];
    };
    eq(report.pid, child.pid);
    eq(status.code, 0, `child ended ${JSON.stringify(status)}; stderr: ${err}`);
    eq(status.signal, null);
    ok(!/inspector/i.test(err), `stderr mentions the inspector: ${err}`);
    const mine = listening.filter((i) => held.has(i));
    eq(mine, [], `the child listens on 127.0.0.1:${INSPECTOR_PORT} (socket inodes ${mine.join(", ")})`);
    eq(report.runs.length, 4);
    for (const r of report.runs) {
      eq([r.stop, r.exit, r.errno], ["timeout", "INTR", "EINTR"]);
      ok(r.ms >= 100 && r.ms < 400, `a 100 ms timeout stopped after ${r.ms.toFixed(1)} ms`);
    }
  },
);
