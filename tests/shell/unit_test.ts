/**
 * In-process unit tests of the shell's parsers: lexer, x/ formats, completion from the table,
 * and the recorder's literals.
 * @module
 */

import assert from "node:assert/strict";
import { lex, splitCommands } from "../../shell/lexer.ts";
import { dumpFormat, dumpLines } from "../../shell/commands/mem.ts";
import { complete } from "../../shell/complete.ts";
import { Session } from "../../shell/session.ts";
import { big, str } from "../../shell/ts_literal.ts";
import { UsageError } from "../../shell/usage_error.ts";
import { normalise } from "./helpers.ts";
import { errorLine } from "../../shell/output.ts";
import { ERRNO, MemoryFaultError } from "../../core.ts";

Deno.test("lexer: quotes, escapes, ; and comments", () => {
  assert.deepEqual(splitCommands(`a 'b c' "d\\"e\\n"; f # g`), [["a", "b c", 'd"e\n'], ["f"]]);
  assert.deepEqual(splitCommands("x 'a;b' c;d"), [["x", "a;b", "c"], ["d"]]);
  assert.throws(() => splitCommands("echo 'open"), UsageError);
  assert.equal(lex("gmem ").trailingSpace, true);
});

Deno.test("x/ formats: count, unit, format; bad ones refused", () => {
  assert.deepEqual(dumpFormat("16xb"), { count: 16, unit: 1, format: "x" });
  assert.deepEqual(dumpFormat("4gx"), { count: 4, unit: 8, format: "x" });
  assert.deepEqual(dumpFormat(undefined), { count: 16, unit: 1, format: "x" });
  assert.throws(() => dumpFormat("4q"), UsageError);
  assert.throws(() => dumpFormat("0x"), UsageError);
  const b = new Uint8Array([0xff, 0xff, 0x01, 0x00]);
  assert.deepEqual(dumpLines(0n, "g:", b, dumpFormat("2dh")), ["g:0x0: -1 1"]);
  assert.deepEqual(dumpLines(0n, "g:", b, dumpFormat("1xw")), ["g:0x0: 0x0001ffff"]);
});

Deno.test("completion: commands, sub-commands, flags, FlagSet values", () => {
  const ctx = new Session();
  assert.deepEqual(complete(ctx, "gm")[0], ["gmem "]);
  assert.ok(complete(ctx, "gmem ")[0].includes("create "));
  assert.deepEqual(complete(ctx, "gmem create --f")[0], ["--flags "]);
  assert.deepEqual(complete(ctx, "gmem create --flags mmap,")[0], ["mmap,init-shared"]);
  assert.deepEqual(complete(ctx, "slot set 1 --flags read")[0], ["readonly"]);
  assert.deepEqual(complete(ctx, "vm create --type s")[0].sort(), ["sev", "sev-es", "snp", "sw-protected"]);
  assert.deepEqual(complete(ctx, "x/4xb gmem")[0], []);
});

Deno.test("recorder literals escape everything typed", () => {
  const evil = '"; Deno.exit(1); `${x}` */ \n\u2028';
  assert.equal(eval(str(evil)), evil);
  assert.ok(!str(evil).includes("\n"));
  assert.equal(big(0x1000n), "0x1000n");
});

Deno.test("normalise: fd numbers, addresses, inode numbers and timings compare equal; the rest does not", () => {
  const same = (a: string, b: string) => assert.equal(normalise(a), normalise(b));
  same("gmem0: fd 23, size 0x1000", "gmem0: fd 24, size 0x1000");
  same(
    "error: KVM_CREATE_GUEST_MEMFD: EINVAL [vm=vm0 fd=22 size=0x1]",
    "error: KVM_CREATE_GUEST_MEMFD: EINVAL [vm=vm0 fd=21 size=0x1]",
  );
  same("map0: 0x7f5dadb1f000 size 0x1000", "map0: 0x7efee43d7000 size 0x1000");
  same("st_blocks 8, ino 4242, mode 0100600", "st_blocks 8, ino 17, mode 0100600");
  same("stop: HLT; last exit HLT; 1 exits in 0.1 ms", "stop: HLT; last exit HLT; 1 exits in 12.9 ms");
  same("step 1 (3.5 ms)", "step 1 (41.0 ms)");
  assert.notEqual(normalise("gmem0: size 0x1000"), normalise("gmem0: size 0x2000"));
  assert.notEqual(normalise("1 exits in 1 ms"), normalise("2 exits in 1 ms"));
  assert.notEqual(normalise("gmem0: fd 23"), normalise("gmem1: fd 23"));
});

Deno.test("command table: every entry has an implementation in its group's module, and nothing else does", async () => {
  const { COMMANDS, implOf } = await import("../../shell/table.ts");
  const names = COMMANDS.map((c) => c.name);
  assert.equal(new Set(names).size, names.length, "command names are unique");
  const groups = new Map<() => unknown, Set<string>>();
  for (const c of COMMANDS) {
    const impl = await implOf(c);
    assert.equal(typeof impl.run, "function", `${c.name}: run`);
    groups.set(c.load, (groups.get(c.load) ?? new Set()).add(c.name));
  }
  for (const [load, listed] of groups) {
    const implemented = Object.keys(await (load as () => Promise<Record<string, unknown>>)());
    assert.deepEqual(implemented.sort(), [...listed].sort(), "a group implements exactly its table entries");
  }
});

Deno.test("start-up layering: the shell imports core.ts, and loads mod.ts and command modules only with import()", async () => {
  const root = new URL("../../shell/", import.meta.url);
  const files: string[] = [];
  const walk = async (dir: URL, rel: string) => {
    for await (const e of Deno.readDir(dir)) {
      if (e.isDirectory) await walk(new URL(`${e.name}/`, dir), `${rel}${e.name}/`);
      else if (e.name.endsWith(".ts")) files.push(`${rel}${e.name}`);
    }
  };
  await walk(root, "");
  assert.ok(files.includes("specs/vcpu.ts") && files.includes("commands/vcpu.ts"));
  for (const f of files) {
    const text = await Deno.readTextFile(new URL(f, root));
    const statics = [...text.matchAll(/^(?:import|export)\s[^;]*?from\s+"([^"]+)"/gms)]
      .filter((m) => !/^(?:import|export)\s+type\s/.test(m[0]))
      .map((m) => m[1]);
    for (const s of statics) {
      assert.ok(
        !/(^|\/)mod\.ts$/.test(s),
        `${f} imports ${s} statically (the shell imports core.ts; mod.ts by import())`,
      );
      assert.ok(!s.includes("scenario/"), `${f} imports ${s}`);
      if (f.startsWith("specs/") || ["table.ts", "dispatch.ts", "main.ts", "parse.ts", "complete.ts"].includes(f)) {
        // vm and vcpu (vm create, run) load with the table: on nearly every process's path.
        const eager = f === "specs/vm.ts" && s.endsWith("commands/vm.ts") ||
          f === "specs/vcpu.ts" && s.endsWith("commands/vcpu.ts");
        const impl = !eager && /commands\/(?!types\.ts|complete_helpers\.ts)[a-z_]+\.ts$/.test(s);
        assert.ok(!impl, `${f} imports ${s} statically: command implementations load on first use`);
      }
    }
  }
});

Deno.test("errorLine: a fault-safe EFAULT names the signal a real access would get (gmem SIGBUS, anon SIGSEGV)", () => {
  const fault = (source: string) =>
    errorLine(new MemoryFaultError("process_vm_readv", ERRNO.EFAULT, { source, offset: 0n, length: 4n }, 0n));
  assert.match(fault("gmem1"), /^EFAULT: would SIGBUS — process_vm_readv: EFAULT .*source=gmem1/);
  assert.match(fault("gmem0+0x2000"), /^EFAULT: would SIGBUS — /);
  assert.match(fault("anon"), /^EFAULT: would SIGSEGV — process_vm_readv: EFAULT .*source=anon/);
});
