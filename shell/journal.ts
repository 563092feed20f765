/**
 * The journal: every command that ran becomes the equivalent mod.ts call (statements for a
 * recorded script, recorder.ts). Failed commands become expect-errno steps; reads become checks
 * of the bytes the live session saw. User text reaches the file only through ts_literal.ts (JSON
 * strings, bigint literals), never as code.
 * @module
 */

import { KvmError } from "../core.ts";
import { ident, str } from "./ts_literal.ts";
import type { Outcome, Recorded } from "./commands/types.ts";

/** A word as it would be typed: quoted when the lexer would otherwise split or change it. */
function typed(w: string): string {
  if (w !== "" && !/[\s'";#\\]/.test(w)) return w;
  if (!w.includes("'")) return `'${w}'`;
  return `"${w.replace(/[\\"]/g, "\\$&").replace(/\n/g, "\\n").replace(/\t/g, "\\t")}"`;
}

/**
 * The statements for one command: a comment with the command line (as a JSON string, so it
 * cannot end the comment), then the calls — bound to the object's name, checked against what
 * was observed, or wrapped in an expectation of the error the live session got. Claims are the
 * generated call text, never user text.
 */
export function statements(words: string[], recs: Recorded[], result: { out?: Outcome; error?: unknown }): string[] {
  const lines = [`// kvmsh> ${str(words.map(typed).join(" "))}`];
  if (!recs.length) return lines.map(indent);
  if (result.error !== undefined) {
    const anyAsync = recs.some((r) => r.async);
    const body = recs.length === 1 && !anyAsync
      ? recs[0].expr
      : `{ ${recs.map((r) => `${r.async ? "await " : ""}${r.expr};`).join(" ")} }`;
    const fn = `${anyAsync ? "async " : ""}() => ${body}`;
    const e = result.error;
    const aw = anyAsync ? "await " : "";
    if (e instanceof KvmError) lines.push(`${aw}kvmsh.expectErrno(${str(e.errnoName)}, ${fn});`);
    else {
      const claim = str(recs.map((r) => r.expr).join("; "));
      lines.push(`await expectThrows(${str(e instanceof Error ? e.name : "Error")}, ${fn}, ${claim});`);
    }
    return lines.map(indent);
  }
  const out = result.out ?? {};
  recs.forEach((r, i) => {
    const call = `${r.async ? "await " : ""}${r.expr}`;
    if (out.bind && i === 0) {
      lines.push(`const ${ident(out.bind)} = ${call};`);
      if (r.check) lines.push(...r.check(out.bind, out, r.expr));
    } else if (r.check) {
      const checks = r.check("r", out, r.expr);
      lines.push(checks.length ? `{ const r = ${call}; ${checks.join(" ")} }` : `${call};`);
    } else lines.push(`${call};`);
  });
  for (const b of out.sideBinds ?? []) lines.push(`const ${ident(b.name)} = ${b.expr};`);
  return lines.map(indent);
}

function indent(l: string): string {
  return `  ${l}`;
}
