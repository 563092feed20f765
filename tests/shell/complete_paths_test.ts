/**
 * Completion of file paths (run, source, record start) and of `help`'s sub-command from the
 * command table, in-process; and `help exit status`, the section `run`'s summary points to.
 * @module
 */

import assert from "node:assert/strict";
import { complete } from "../../shell/complete.ts";
import { Session } from "../../shell/session.ts";
import { runC } from "./helpers.ts";

Deno.test("completion: file paths for run, source and record start", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kvmsh-complete-test-" });
  try {
    await Deno.mkdir(`${dir}/guests`);
    await Deno.writeTextFile(`${dir}/guests/a.bin`, "");
    await Deno.writeTextFile(`${dir}/go;#'x".kvmsh`, "");
    await Deno.writeTextFile(`${dir}/.hidden`, "");
    await Deno.symlink(`${dir}/guests`, `${dir}/glink`);
    const ctx = new Session();
    // A directory ends in `/` (no space: Tab goes on into it); a file ends the word.
    assert.deepEqual(complete(ctx, `run ${dir}/gu`), [[`${dir}/guests/`], `${dir}/gu`]);
    assert.deepEqual(complete(ctx, `run ${dir}/guests/`)[0], [`${dir}/guests/a.bin `]);
    // A link to a directory is one; the lexer's special characters come escaped.
    assert.deepEqual(complete(ctx, `source ${dir}/g`)[0], [
      `${dir}/glink/`,
      `${dir}/go\\;\\#\\'x\\".kvmsh `,
      `${dir}/guests/`,
    ]);
    // Dot files once a dot is typed; relative to the working directory; none for a missing dir.
    assert.deepEqual(complete(ctx, `record start ${dir}/`)[0].some((c) => c.includes(".hidden")), false);
    assert.deepEqual(complete(ctx, `record start ${dir}/.h`)[0], [`${dir}/.hidden `]);
    assert.ok(complete(new Session(), "run scripts/guests/bin/hello1")[0].includes("scripts/guests/bin/hello16.bin "));
    assert.deepEqual(complete(ctx, `run ${dir}/nothing/here`)[0], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("completion: help <group> <TAB> gives the group's sub-commands, then nothing", () => {
  const ctx = new Session();
  assert.deepEqual(complete(ctx, "help gmem cr"), [["create "], "cr"]);
  assert.ok(complete(ctx, "help vm ")[0].includes("close "));
  assert.deepEqual(complete(ctx, "help vm ")[0].includes("gmem "), false, "a command group offered as a sub-command");
  assert.deepEqual(complete(ctx, "help run ")[0], []);
  assert.deepEqual(complete(ctx, "help gmem create ")[0], []);
  assert.deepEqual(complete(ctx, "help gm")[0], ["gmem "]);
});

Deno.test("help exit status: the section run's summary points to", async () => {
  const r = await runC(["help exit status"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^exit status \(-c,/);
  assert.match(r.stdout, /^ {2}130 {2}Ctrl-C/m);
  const run = await runC(["help run"]);
  assert.match(run.stdout, /\(help: exit status\)/, "run's summary no longer points there");
});

Deno.test("completion: a path typed escaped or quoted is replaced as typed (readline swaps that many characters)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kvmsh-complete-test-" });
  try {
    await Deno.mkdir(`${dir}/my dir`);
    await Deno.writeTextFile(`${dir}/my dir/hello.bin`, "");
    const ctx = new Session();
    // The second Tab: the word on the line is `…/my\ dir/`, one character longer than its text.
    assert.deepEqual(complete(ctx, `run ${dir}/my\\ dir/`), [[`${dir}/my\\ dir/hello.bin `], `${dir}/my\\ dir/`]);
    // Quoted, and still open: the quote is part of what is replaced.
    assert.deepEqual(complete(ctx, `run '${dir}/my d`), [[`${dir}/my\\ dir/`], `'${dir}/my d`]);
    // Plain words are unchanged.
    assert.deepEqual(complete(ctx, "vm cr"), [["create "], "cr"]);
    assert.deepEqual(complete(ctx, "run x "), [[], ""]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
