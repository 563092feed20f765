/**
 * What happens to typed lines at a real prompt (tmux): a Ctrl-C abandons the rest of a `;` line
 * and the lines pasted with it; a terminal that goes away (hangup) does not run the half-typed
 * line, and kvmsh still finishes (recording closed, no JS stack); Tab completes file paths.
 * @module
 */

import assert from "node:assert/strict";
import { kvmTest } from "../kvm_env.ts";
import { KVMSH, ROOT } from "./helpers.ts";
import { Tmux } from "./tmux.ts";

const t = new Tmux("kvmsh-line");
const waitFor = (name: string, re: RegExp, history = 200) => t.waitFor(name, re, 20_000, history);
const keys = (name: string, ...k: string[]) => t.keys(name, ...k);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

kvmTest("tty: Ctrl-C abandons the rest of a `;` line and the lines pasted after it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kvmsh-line-test-" });
  try {
    t.start("a", `env NO_COLOR=1 KVMSH_HISTORY=${dir}/history`);
    await waitFor("a", /kvmsh>\s*$/m);
    keys("a", "vm create", "Enter");
    await waitFor("a", /vm0: fd \d+/);
    // One line, two commands: Ctrl-C stops the guest and the line.
    keys("a", 'run --asm "1: jmp 1b" --timeout 0; echo same-line', "Enter");
    await sleep(1500);
    keys("a", "C-c");
    await waitFor("a", /stop: interrupt; last exit INTR[^]*kvmsh\(vm0\)>\s*$/);
    // Lines pasted together: the one after the interrupted run is not run.
    await Deno.writeTextFile(`${dir}/paste`, 'run --asm "1: jmp 1b" --timeout 0\necho pasted-after\n');
    t.run("load-buffer", "-b", "p", `${dir}/paste`);
    t.run("paste-buffer", "-b", "p", "-t", "a");
    await sleep(1500);
    keys("a", "C-c");
    await waitFor("a", /stop: interrupt[^]*stop: interrupt[^]*kvmsh\(vm0\)>\s*$/);
    keys("a", "echo next", "Enter");
    await waitFor("a", /^next$/m);
    const s = t.screen("a", { history: 200 });
    assert.doesNotMatch(s, /(^|> )same-line$/m, "the rest of the interrupted line ran");
    assert.doesNotMatch(s, /(^|> )pasted-after$/m, "a line pasted after the interrupted one ran");
    const h = await Deno.readTextFile(`${dir}/history`);
    assert.doesNotMatch(h, /^echo pasted-after$/m, "a line that never ran is no history");
    keys("a", "C-d");
    await waitFor("a", /EXIT=0/);
  } finally {
    t.kill();
    await Deno.remove(dir, { recursive: true });
  }
});

kvmTest("tty: a hangup does not run the half-typed line; the recording is finished, exit 0", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kvmsh-line-test-" });
  try {
    // SIGHUP ignored (nohup, or a terminal that only closes its end): kvmsh sees the end of its
    // input. With the default SIGHUP it may still read that end before the signal lands.
    t.run(
      "new-session",
      "-d",
      "-s",
      "h",
      "-x",
      "160",
      "-y",
      "50",
      `cd ${ROOT} && trap '' HUP; env NO_COLOR=1 KVMSH_HISTORY=${dir}/history ${KVMSH} 2>${dir}/stderr; ` +
        `echo $? > ${dir}/exit`,
    );
    await waitFor("h", /kvmsh>\s*$/m);
    keys("h", "vm create", "Enter");
    await waitFor("h", /vm0: fd \d+/);
    keys("h", `record start ${dir}/rec.ts`, "Enter");
    await waitFor("h", /recording to /);
    keys("h", "vm close vm0");
    await waitFor("h", /kvmsh\(vm0\)> vm close vm0$/m);
    t.run("kill-session", "-t", "h");
    let code: string | undefined;
    for (let i = 0; i < 400 && code === undefined; i++) {
      try {
        code = (await Deno.readTextFile(`${dir}/exit`)).trim() || undefined;
      } catch {
        await sleep(50);
      }
    }
    const stderr = await Deno.readTextFile(`${dir}/stderr`);
    assert.doesNotMatch(stderr, /Uncaught|\bat .*\.js:\d+/, `a JS error on the way out:\n${stderr}`);
    assert.equal(code, "0", `exit status; stderr:\n${stderr}`);
    const h = await Deno.readTextFile(`${dir}/history`);
    assert.match(h, /^record start /m);
    assert.doesNotMatch(h, /vm close/, "the half-typed line went into history");
    const rec = await Deno.readTextFile(`${dir}/rec.ts`);
    assert.doesNotMatch(rec, /vm close|\.close\(\)/, "the half-typed line ran");
    assert.match(rec, /^\}\);\n$/m, "the recording is finished");
  } finally {
    t.kill();
    await Deno.remove(dir, { recursive: true });
  }
});

kvmTest("tty: Tab completes file paths for run, source and record start", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kvmsh-line-test-" });
  try {
    await Deno.mkdir(`${dir}/sub dir`);
    await Deno.writeTextFile(`${dir}/sub dir/script.kvmsh`, "echo from-the-script\n");
    t.start("p", `env NO_COLOR=1 KVMSH_HISTORY=/dev/null`);
    await waitFor("p", /kvmsh>\s*$/m);
    // Relative to the working directory (the repo root), into directories, to the file.
    keys("p", "run scripts/guests/bin/hello1", "Tab");
    await waitFor("p", /kvmsh> run scripts\/guests\/bin\/hello16\.bin $/m);
    keys("p", "C-u", `source ${dir}/su`, "Tab");
    await waitFor("p", /kvmsh> source \S+\/sub\\ dir\/$/m);
    keys("p", "sc", "Tab");
    await waitFor("p", /sub\\ dir\/script\.kvmsh $/m);
    keys("p", "Enter");
    await waitFor("p", /^from-the-script$/m);
    keys("p", `record start ${dir}/s`, "Tab");
    await waitFor("p", /kvmsh> record start \S+\/sub\\ dir\/$/m);
    keys("p", "C-u");
    keys("p", "C-d");
    await waitFor("p", /EXIT=0/);
  } finally {
    t.kill();
    await Deno.remove(dir, { recursive: true });
  }
});
