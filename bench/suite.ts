/**
 * What a benchmark suite is: it gets the server's URL and the figures of the suites that ran
 * before it, runs on connections of its own, and returns rows for the table, named figures
 * for later suites, the targets it checks and everything else for results.json.
 */
import type { Logger } from '../core/log.js';

export interface BenchContext {
  natsUrl: string;
  log: Logger;
  /** Figures published by earlier suites, by name (see each suite's exported keys). */
  figures: ReadonlyMap<string, number>;
}

export interface Row {
  metric: string;
  value: string;
}

export interface TargetCheck {
  target: string;
  met: boolean;
  detail: string;
}

export interface SuiteReport {
  rows: Row[];
  /** Printed under the suite's rows: definitions, caveats. */
  notes?: string[];
  figures: Record<string, number>;
  targets: TargetCheck[];
  details: Record<string, unknown>;
}

export interface Suite {
  /** Key in results.json. */
  id: string;
  title: string;
  run(ctx: BenchContext): Promise<SuiteReport>;
}

export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a';
  return `${ms < 10 ? ms.toFixed(3) : ms.toFixed(1)} ms`;
}
