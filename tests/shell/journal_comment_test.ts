/**
 * A recording's `// kvmsh> …` comment gives the command as it could be typed again: words the
 * lexer would split or change are quoted, so the comment lexes back to the same words.
 * @module
 */

import assert from "node:assert/strict";
import { statements } from "../../shell/journal.ts";
import { splitCommands } from "../../shell/lexer.ts";

Deno.test("journal: the command comment lexes back to the words that ran", () => {
  const lines = [
    `run --asm "1: jmp 1b; hlt"`,
    `write 0 "str:it's"`,
    `echo "a\\"b\\\\c\\nd\\te" '' x#y`,
    `vm create`,
  ];
  const comments: string[] = [];
  for (const line of lines) {
    const words = splitCommands(line)[0];
    const c = statements(words, [], {})[0];
    const m = /^\s*\/\/ kvmsh> (".*")$/.exec(c);
    assert.ok(m, c);
    comments.push(JSON.parse(m[1]));
    assert.deepEqual(splitCommands(JSON.parse(m[1])), [words], c);
  }
  assert.deepEqual(comments, [
    "run --asm '1: jmp 1b; hlt'",
    `write 0 "str:it's"`,
    "echo 'a\"b\\c\nd\te' '' 'x#y'",
    "vm create",
  ]);
});
