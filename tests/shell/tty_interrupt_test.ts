/**
 * Ctrl-C at a real prompt (tmux) outside a guest's KVM_RUN: while `as` assembles (a fake, slow
 * assembler first in PATH), between and during the runs of a `source`d file (nested too), and a
 * SIGINT from `kill -INT` at an idle prompt. The shell survives each, says the command was
 * interrupted, stops the whole `source`, leaves no /tmp/kvmsh-asm-* directory, and answers the next
 * command.
 * @module
 */

import assert from "node:assert/strict";
import { kvmTest } from "../kvm_env.ts";
import { Tmux } from "./tmux.ts";
import { nodeOwner } from "../../kvm/device_node.ts";

const t = new Tmux("kvmsh-int");
const screen = (name: string) => t.screen(name, { history: 200 });
const waitFor = (name: string, re: RegExp) => t.waitFor(name, re, 20_000, 200);
const keys = (name: string, ...k: string[]) => t.keys(name, ...k);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts kvmsh in tmux session `name` with `env` (no colour, no history file). */
function start(name: string, env: Record<string, string>): void {
  const vars = Object.entries(env).map(([k, v]) => `${k}='${v}'`).join(" ");
  t.start(name, `env NO_COLOR=1 KVMSH_HISTORY=/dev/null ${vars}`);
}

kvmTest(
  "tty: Ctrl-C while `as` assembles, in a sourced script, and kill -INT at the idle prompt: the shell survives",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "kvmsh-int-test-" });
    const devNullMode = nodeOwner("/dev/null")?.mode;
    try {
      await Deno.mkdir(`${dir}/bin`);
      await Deno.mkdir(`${dir}/tmp`);
      // A slow assembler: the Ctrl-C lands while it runs.
      await Deno.writeTextFile(`${dir}/bin/as`, "#!/bin/sh\necho slow-as-started >&2\nsleep 30\n", { mode: 0o755 });
      start("a", { PATH: `${dir}/bin:${Deno.env.get("PATH")}`, TMPDIR: `${dir}/tmp`, XDG_CACHE_HOME: `${dir}/cache` });
      await waitFor("a", /kvmsh>\s*$/m);
      keys("a", "vm create", "Enter");
      await waitFor("a", /vm0: fd \d+/);
      keys("a", 'run "nop" --asm', "Enter");
      await sleep(1500); // `as` sleeps now
      keys("a", "C-c");
      await waitFor("a", /interrupted \(SIGINT\): the command was abandoned/);
      await waitFor("a", /kvmsh\(vm0\)>\s*$/m);
      assert.doesNotMatch(screen("a"), /as failed/, "a Ctrl-C is no assembler error");
      assert.match(screen("a"), /\^C\n/, "the next output starts on a new line after the terminal's ^C");
      keys("a", "echo alive-1", "Enter");
      await waitFor("a", /^alive-1$/m);
      assert.deepEqual([...Deno.readDirSync(`${dir}/tmp`)].map((e) => e.name), [], "no kvmsh-asm-* left");

      // kill -INT at the idle prompt: like Ctrl-C on a line (abandoned, new prompt).
      keys("a", "echo never-run");
      await waitFor("a", /> echo never-run$/m);
      Deno.kill(t.childPid("a"), "SIGINT");
      await waitFor("a", /kvmsh\(vm0\)> \^C\nkvmsh\(vm0\)>\s*$/m);
      keys("a", "echo alive-2", "Enter");
      await waitFor("a", /^alive-2$/m);
      assert.doesNotMatch(screen("a"), /^never-run$/m);
      keys("a", "exit 3", "Enter");
      await waitFor("a", /EXIT=3/);
      // The prompt appended history to KVMSH_HISTORY=/dev/null: the node keeps its mode (Deno's
      // writeFile applies a `mode` to an existing file: /dev/null once became 0600 here).
      assert.equal(nodeOwner("/dev/null")?.mode, devNullMode);
    } finally {
      t.kill();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

kvmTest("tty: Ctrl-C stops a sourced script (and the source around it), at a run or between runs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kvmsh-int-test-" });
  try {
    // Many short runs: the Ctrl-C lands in a run or between two; either way the script stops.
    const quick = Array.from({ length: 400 }, (_, i) => `run "mov $${i & 0x7f}, %al; out %al, $0xf4" --asm`);
    await Deno.writeTextFile(`${dir}/quick.kvmsh`, ["vm create", ...quick, "echo quick-done"].join("\n") + "\n");
    // Spinning runs in a nested source: Ctrl-C stops the inner and the outer script.
    await Deno.writeTextFile(
      `${dir}/spin.kvmsh`,
      ['run "jmp ." --asm --timeout 3s', "echo inner-after-1", 'run "jmp ." --asm --timeout 3s', "echo inner-done"]
        .join("\n") + "\n",
    );
    await Deno.writeTextFile(`${dir}/outer.kvmsh`, `source ${dir}/spin.kvmsh\necho outer-done\n`);
    start("b", {});
    await waitFor("b", /kvmsh>\s*$/m);
    keys("b", `source ${dir}/quick.kvmsh`, "Enter");
    await waitFor("b", /stop: exit-code \(exit code 0x5\)/);
    keys("b", "C-c");
    await waitFor("b", /source .*quick\.kvmsh: interrupted \(SIGINT\) at line \d+/);
    await waitFor("b", /kvmsh\(vm0\)>\s*$/m);
    assert.doesNotMatch(screen("b"), /quick-done|exit code 0x7f\)/, "the script stopped");

    keys("b", `source ${dir}/outer.kvmsh`, "Enter");
    await sleep(1200);
    keys("b", "C-c");
    await waitFor("b", /source .*outer\.kvmsh: interrupted \(SIGINT\) at line 1/);
    const s = screen("b");
    assert.match(s, /\^C\nstop: interrupt; last exit INTR/);
    assert.match(s, /source .*spin\.kvmsh: interrupted \(SIGINT\) at line 1/);
    assert.doesNotMatch(s, /inner-after-1|inner-done|outer-done/);
    keys("b", "echo alive-3", "Enter");
    await waitFor("b", /^alive-3$/m);
    keys("b", "C-d");
    await waitFor("b", /EXIT=0/);
  } finally {
    t.kill();
    await Deno.remove(dir, { recursive: true });
  }
});
