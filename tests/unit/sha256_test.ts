import { strictEqual } from "node:assert/strict";
import { createHash } from "node:crypto";
import { sha256Hex } from "../../kvm/sha256.ts";

Deno.test("sha256Hex matches node:crypto on empty, short, block-boundary and UTF-8 input", () => {
  strictEqual(sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  strictEqual(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  for (const n of [1, 55, 56, 63, 64, 65, 119, 120, 1000]) {
    const s = "x".repeat(n) + "ä→" + n;
    strictEqual(sha256Hex(s), createHash("sha256").update(s).digest("hex"), `length ${n}`);
  }
});
