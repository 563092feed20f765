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
