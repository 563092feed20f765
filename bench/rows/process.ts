/**
 * Row 7: a whole process from start to exit running a tiny real-mode guest (one byte on port
 * 0xE9, exit code on 0xF4): kvmsh against a C program doing the same, and against QEMU with the
 * same code as its `-bios` image — what a user would pick instead.
 * @module
 */

import { biosImage, HELLO_EXIT } from "../guests.ts";
import { bareHelloScript } from "../bare_deno.ts";
import { type ProcessRun, timeProcess } from "../measure.ts";
import { type Side, summarizeRounds } from "../stats.ts";
import { type Row, type RowContext, skipped } from "./row.ts";

const EXPECT_OUT = "K";
/** isa-debug-exit status for value 0. */
const EXPECT_CODE = 1;

function checker(who: string, out = EXPECT_OUT, code = EXPECT_CODE) {
  return (r: ProcessRun) => {
    if (r.code !== code || !r.stdout.includes(out)) {
      throw new Error(`${who}: exit ${r.code}, stdout ${JSON.stringify(r.stdout)}, stderr ${r.stderr.slice(0, 200)}`);
    }
  };
}

async function which(cmd: string): Promise<string | undefined> {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    try {
      const p = `${dir}/${cmd}`;
      if ((await Deno.stat(p)).isFile) return p;
    } catch { /* not here */ }
  }
  return undefined;
}

/** `deno run` of bench/hello_main.ts with kvmsh's own Deno and flags. */
function scriptCommand(ctx: RowContext, guest: string, extra: string[] = []): { cmd: string; args: string[] } {
  return {
    cmd: `${ctx.root}/.tools/node_modules/.bin/deno`,
    args: [
      "run",
      "--quiet",
      "--no-prompt",
      "--allow-ffi",
      "--allow-read",
      "--allow-write",
      "--allow-run",
      "--allow-env",
      "--config",
      `${ctx.root}/deno.json`,
      `${ctx.root}/bench/hello_main.ts`,
      guest,
      ...extra,
    ],
  };
}

/** What `kvmsh -c "vm create; run guest"` prints for the guest (kvmsh itself exits 0). */
const SHELL_OUT = `console: ${EXPECT_OUT}`;

interface Cmd {
  cmd: string;
  args: string[];
  label: string;
  check: (r: ProcessRun) => void;
}

/**
 * How the `./kvmsh` wrapper runs Deno, read from the wrapper itself (its `--v8-flags` and its own
 * DENO_DIR), so rows 7d/7e run "as ./kvmsh runs Deno" whatever the wrapper says today.
 */
async function wrapperDeno(root: string): Promise<{ v8Flags: string; denoDir: string }> {
  const text = await Deno.readTextFile(`${root}/kvmsh`);
  const flags = /^exec "\$deno" run .*?(--v8-flags=\S+)/m.exec(text)?.[1];
  const dir = /DENO_DIR=\$\{DENO_DIR:-\$here\/([^}]+)\}/.exec(text)?.[1];
  if (!flags || !dir) throw new Error("cannot read the Deno flags and DENO_DIR from ./kvmsh");
  return { v8Flags: flags, denoDir: `${root}/${dir}` };
}

/** `./kvmsh -c "vm create; run guest"`, checked once before it is timed (a failure ends the row). */
async function kvmshCommand(ctx: RowContext, guest: string): Promise<Cmd> {
  const cmd: Cmd = {
    cmd: `${ctx.root}/kvmsh`,
    args: ["-c", `vm create; run ${guest}`],
    label: "./kvmsh -c 'vm create; run'",
    check: checker("kvmsh", SHELL_OUT, 0),
  };
  const out = await new Deno.Command(cmd.cmd, { args: cmd.args, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  cmd.check({ code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) });
  return cmd;
}

export const processRow: Row = {
  id: "7",
  name: "whole process: real-mode guest, start to exit",
  unit: "ns",
  target: { kind: "max", value: 0.5 },
  async run(ctx) {
    const reps = 4;
    const guest = `${ctx.tmp}/hello.bin`;
    const bios = `${ctx.tmp}/hello-bios.bin`;
    await Deno.writeFile(guest, HELLO_EXIT);
    await Deno.writeFile(bios, biosImage(HELLO_EXIT));
    const k = await kvmshCommand(ctx, guest);
    const qemu = await which("qemu-system-x86_64");
    const qemuArgs = [
      "-accel",
      "kvm",
      "-bios",
      bios,
      "-device",
      "isa-debug-exit,iobase=0xf4,iosize=1",
      "-display",
      "none",
      "-nodefaults",
      "-chardev",
      "stdio,id=con",
      "-device",
      "isa-debugcon,chardev=con,iobase=0xe9",
      "-m",
      "16",
    ];
    const plain = scriptCommand(ctx, guest, ["--no-interrupt"]);
    // The floor of any Deno program, run as ./kvmsh runs Deno (its flags and DENO_DIR): a bare
    // script doing the same guest with four libc symbols, and an empty script.
    const bare = `${ctx.tmp}/bare_hello.js`, empty = `${ctx.tmp}/empty.js`;
    await Deno.writeTextFile(bare, bareHelloScript());
    await Deno.writeTextFile(empty, "");
    const w = await wrapperDeno(ctx.root);
    const denoLike = (script: string, ...args: string[]) => ({
      cmd: `${ctx.root}/.tools/node_modules/.bin/deno`,
      args: ["run", "--quiet", "--no-prompt", "--no-config", w.v8Flags, "--allow-ffi", "--allow-read", script, ...args],
      env: { DENO_DIR: w.denoDir },
    });
    const b = denoLike(bare, guest), e = denoLike(empty);
    const cs: Side[] = [], ks: Side[] = [], qs: Side[] = [], ps: Side[] = [], bs: Side[] = [], es: Side[] = [];
    // Eight rounds: QEMU's wall time comes in ~4 ms steps (56, 60, 64, 68, 72 ms seen in one run), so
    // a round's median of four moves by a step; more rounds steady the median of their ratios.
    for (let round = 0; round < (ctx.quick ? 2 : 8); round++) {
      cs.push(await timeProcess("C", ctx.bins.hello, [guest], reps, checker("C")));
      ks.push(await timeProcess("kvmsh", k.cmd, k.args, reps, k.check));
      ps.push(await timeProcess("kvmsh", plain.cmd, plain.args, reps, checker("mod.ts script")));
      bs.push(await timeProcess("bare", b.cmd, b.args, reps, checker("bare Deno script"), b.env));
      es.push(await timeProcess("empty", e.cmd, e.args, reps, checker("empty Deno script", "", 0), e.env));
      if (qemu) qs.push(await timeProcess("QEMU", qemu, qemuArgs, reps, checker("QEMU")));
    }
    const note = k.label;
    const vsC = summarizeRounds("7a", `${this.name} vs C`, "ns", ks, cs, undefined, note);
    const vsQemu = qemu ? summarizeRounds("7b", `${this.name} vs QEMU`, "ns", ks, qs, this.target, note) : skipped(
      { ...this, id: "7b", name: `${this.name} vs QEMU` },
      "qemu-system-x86_64 not installed (apt-get install qemu-system-x86)",
    );
    const againstQemu = (id: string, name: string, side: Side[], note: string) =>
      qemu
        ? summarizeRounds(id, name, "ns", side, qs, undefined, note)
        : skipped({ ...this, id, name, target: undefined }, "QEMU not installed");
    const plainRow = againstQemu(
      "7c",
      "mod.ts script, run not interruptible, vs QEMU",
      ps,
      "the API without the shell: what kvmsh's own modules and output add",
    );
    const bareRow = againstQemu(
      "7d",
      "bare Deno script (4 libc symbols, no kvmsh), same guest, vs QEMU",
      bs,
      "the floor of a Deno program doing this guest (bench/bare_deno.ts)",
    );
    const emptyRow = againstQemu("7e", "empty Deno script, start to exit, vs QEMU", es, "Deno's own start and exit");
    return [vsC, vsQemu, plainRow, bareRow, emptyRow];
  },
};
