/**
 * What a bench row is, and the side-by-side driver every row uses: C and kvmsh alternate in
 * rounds so drift of the machine (2 cores, nested virtualization) hits both sides alike.
 * @module
 */

import type { Program } from "../build.ts";
import { type RowResult, type Side, summarize, summarizeRounds, type Target, type Unit } from "../stats.ts";

/** What a row gets from the runner. */
export interface RowContext {
  /** C baseline binaries by program. */
  bins: Record<Program, string>;
  /** Fewer repetitions (for a smoke run). */
  quick: boolean;
  /** A scratch directory for guest images. */
  tmp: string;
  /** Repo root (where `./kvmsh` lives). */
  root: string;
}

/** One row of the table. */
export interface Row {
  id: string;
  name: string;
  unit: Unit;
  target?: Target;
  run(ctx: RowContext): Promise<RowResult[]>;
}

/**
 * Runs `rounds` × (C, then kvmsh) and summarizes both sides into one row; the ratio is the
 * median of the per-round ratios (drift of the machine's load between rounds cancels).
 */
export async function sideBySide(
  row: Pick<Row, "id" | "name" | "unit" | "target">,
  rounds: number,
  c: () => Promise<Side>,
  kvmsh: () => Side | Promise<Side>,
  note?: string,
): Promise<RowResult> {
  const cs: Side[] = [];
  const ks: Side[] = [];
  for (let i = 0; i < rounds; i++) {
    cs.push(await c());
    ks.push(await kvmsh());
  }
  return summarizeRounds(row.id, row.name, row.unit, ks, cs, row.target, note);
}

/** A row that could not run here, with the reason. */
export function skipped(row: Pick<Row, "id" | "name" | "unit" | "target">, reason: string): RowResult {
  return summarize(row.id, row.name, row.unit, undefined, undefined, row.target, reason);
}
