/**
 * The kick's signal handlers are committed as bytes (kvm/kick_code.ts): they must be exactly what
 * `as` makes of their source (generated from kick_shared.ts's offsets), with the data placeholder
 * present once. Skipped where binutils is not installed.
 */

import { deepStrictEqual as eq } from "node:assert/strict";
import { DATA_PLACEHOLDER, ENTRY, KICK_ASM, KICK_CODE } from "../../kvm/kick_code.ts";

function which(cmd: string): boolean {
  try {
    return new Deno.Command(cmd, { args: ["--version"], stdout: "null", stderr: "null" }).outputSync().success;
  } catch {
    return false;
  }
}

const hasBinutils = which("as") && which("objcopy");

Deno.test({
  name: "KICK_CODE is what `as --64` assembles from KICK_ASM",
  ignore: !hasBinutils,
  fn: () => {
    const dir = Deno.makeTempDirSync({ prefix: "kvmsh-kick-" });
    try {
      Deno.writeTextFileSync(`${dir}/k.s`, KICK_ASM);
      const run = (cmd: string, args: string[]) => {
        const o = new Deno.Command(cmd, { args, stderr: "piped" }).outputSync();
        eq(o.success, true, `${cmd}: ${new TextDecoder().decode(o.stderr)}`);
      };
      run("as", ["--64", "-o", `${dir}/k.o`, `${dir}/k.s`]);
      run("objcopy", ["-O", "binary", "-j", ".text", `${dir}/k.o`, `${dir}/k.bin`]);
      eq([...Deno.readFileSync(`${dir}/k.bin`)], [...KICK_CODE]);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test("KICK_CODE: usr2 is a bare ret, sigint starts by loading the data block, the placeholder occurs once", () => {
  eq(KICK_CODE[ENTRY.usr2], 0xc3);
  const dv = new DataView(KICK_CODE.buffer);
  const at: number[] = [];
  for (let o = 0; o + 8 <= KICK_CODE.length; o++) if (dv.getBigUint64(o, true) === DATA_PLACEHOLDER) at.push(o);
  eq(at, [ENTRY.sigint + 2], "movabs $DATA, %r12 (49 bc imm64) opens the SIGINT handler");
  eq([KICK_CODE[ENTRY.sigint], KICK_CODE[ENTRY.sigint + 1]], [0x49, 0xbc]);
});
