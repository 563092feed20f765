/**
 * Builds the guest library (`deno task guests`): each `*.S` here with GNU as/ld into `bin/`.
 * `hello16.S` (real mode) becomes a flat binary linked at offset 0 (loaded at 0x1000:0000);
 * the others become static freestanding ELF64 images linked at 0x100000 (kvmsh's long-mode
 * load address). The outputs are committed, so a machine without binutils still runs them.
 * @module
 */

const DIR = new URL(".", import.meta.url).pathname;
const BIN = `${DIR}bin`;
/** Guests built as real-mode flat binaries. */
const REAL_MODE = new Set(["hello16"]);

function run(cmd: string, args: string[]): void {
  const out = new Deno.Command(cmd, { args, cwd: DIR, stdout: "piped", stderr: "piped" }).outputSync();
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")}:\n${new TextDecoder().decode(out.stderr)}`);
}

Deno.mkdirSync(BIN, { recursive: true });
const tmp = Deno.makeTempDirSync({ prefix: "kvmsh-guests-" });
try {
  for (const e of [...Deno.readDirSync(DIR)].sort((a, b) => a.name.localeCompare(b.name))) {
    if (!e.name.endsWith(".S")) continue;
    const name = e.name.slice(0, -2);
    const obj = `${tmp}/${name}.o`;
    run("as", ["--64", "-I", DIR, "-o", obj, e.name]);
    const real = REAL_MODE.has(name);
    const out = real ? `${BIN}/${name}.bin` : `${BIN}/${name}.elf`;
    const ldArgs = real ? ["-m", "elf_x86_64", "--oformat", "binary", "-Ttext=0", "-e", "_start", "-o", out, obj] : [
      "-m",
      "elf_x86_64",
      "-static",
      "-nostdlib",
      "--build-id=none",
      "-z",
      "max-page-size=4096",
      "-z",
      "noexecstack",
      "--no-warn-rwx-segments",
      "-Ttext=0x100000",
      "-e",
      "_start",
      "-o",
      out,
      obj,
    ];
    run("ld", ldArgs);
    console.log(`${out.slice(DIR.length)} ${Deno.statSync(out).size} bytes`);
  }
} finally {
  Deno.removeSync(tmp, { recursive: true });
}
