/**
 * Splits a command line into commands (`;`) and words, with shell-like quoting: '…' is
 * literal, "…" allows \" \\ \n \t escapes, a bare `#` starts a comment.
 * @module
 */

import { UsageError } from "./usage_error.ts";

/** One word and where it ends in the line (for completion). */
export interface Word {
  text: string;
  /** True when the word was (partly) quoted. */
  quoted: boolean;
  /** Where the word begins in the line, its quotes and escapes included (completion replaces from there). */
  start: number;
}

/** The result of lexing: commands, each a list of words. `open` is an unterminated quote char. */
export interface Lexed {
  commands: Word[][];
  /** Set when the line ends inside a quote (completion tolerates it, execution refuses it). */
  open?: string;
  /** True when the line ends in whitespace (completion starts a new word). */
  trailingSpace: boolean;
}

const ESCAPES: Record<string, string> = { n: "\n", t: "\t", "\\": "\\", '"': '"', "0": "\0" };

/** Lexes `line`. Never throws; see {@link splitCommands} for the strict form. */
export function lex(line: string): Lexed {
  const commands: Word[][] = [[]];
  let cur: Word | undefined;
  let quote: string | undefined;
  const cmd = () => commands[commands.length - 1];
  const start = () => (cur ??= (cmd().push({ text: "", quoted: false, start: i }), cmd()[cmd().length - 1]));
  let i = 0;
  for (; i < line.length; i++) {
    const c = line[i];
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else cur!.text += c;
      continue;
    }
    if (quote === '"') {
      if (c === '"') quote = undefined;
      else if (c === "\\" && i + 1 < line.length) {
        const n = line[++i];
        cur!.text += ESCAPES[n] ?? `\\${n}`;
      } else cur!.text += c;
      continue;
    }
    if (c === "'" || c === '"') {
      start().quoted = true;
      quote = c;
      continue;
    }
    if (c === ";") {
      cur = undefined;
      commands.push([]);
      continue;
    }
    if (c === " " || c === "\t" || c === "\r" || c === "\n") {
      cur = undefined;
      continue;
    }
    if (c === "#" && !cur) break;
    if (c === "\\" && i + 1 < line.length) {
      start().text += line[++i];
      continue;
    }
    start().text += c;
  }
  const last = line[line.length - 1];
  return {
    commands,
    open: quote,
    trailingSpace: !quote && (last === " " || last === "\t" || last === ";"),
  };
}

/** Splits a line into commands of words; empty commands are dropped. */
export function splitCommands(line: string): string[][] {
  const l = lex(line);
  if (l.open) throw new UsageError(`unterminated ${l.open} quote`);
  return l.commands.filter((c) => c.length > 0).map((c) => c.map((w) => w.text));
}
