/**
 * The guest library's assembly (scripts/guests/abi.inc) restates the guest ABI for `as`: its
 * ports, ucall commands and ucall-block offsets must be kvmsh's own (kvm/guest_abi.ts PORT and
 * UCALL_CMD, ffi/structs.ts GUEST_UCALL) — a change on either side without the other fails here.
 */

import { deepStrictEqual as eq } from "node:assert/strict";
import { PORT, UCALL_CMD } from "../../kvm/guest_abi.ts";
import { GUEST_UCALL } from "../../ffi/structs.ts";

Deno.test("scripts/guests/abi.inc: every .set is the value kvmsh's tables define", () => {
  const text = Deno.readTextFileSync(new URL("../../scripts/guests/abi.inc", import.meta.url));
  const sets = Object.fromEntries(
    [...text.matchAll(/^\s*\.set\s+(\w+),\s*(0x[0-9a-f]+|\d+)\s*$/gim)].map((m) => [m[1], Number(m[2])]),
  );
  const F = GUEST_UCALL.fields;
  eq(sets, {
    CONSOLE_PORT: PORT.CONSOLE,
    EXIT_PORT: PORT.EXIT,
    UCALL_PORT: PORT.UCALL,
    UCALL_PRINT: UCALL_CMD.PRINT,
    UCALL_SYNC: UCALL_CMD.SYNC,
    UCALL_ASSERT: UCALL_CMD.ASSERT,
    UCALL_DONE: UCALL_CMD.DONE,
    UC_CMD: F.cmd.offset,
    UC_ARGS: F.args.offset,
    UC_MSG: F.msg_gpa.offset,
    UC_LEN: F.msg_len.offset,
  });
});
