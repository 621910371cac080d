/** BackfillRow <-> database row (dates and params as JSON text), shared by both dialects. Pure. */
import type { BackfillRow } from './types.js';

export interface BackfillRecord extends Omit<BackfillRow, 'params' | 'dates'> {
  params: string;
  dates: string;
}

export function toBackfillRecord(row: BackfillRow): BackfillRecord {
  return { ...row, params: JSON.stringify(row.params), dates: JSON.stringify(row.dates) };
}

export function toBackfillRow(r: BackfillRecord): BackfillRow {
  return { ...r, backwards: Boolean(r.backwards), params: JSON.parse(r.params) as Record<string, unknown>, dates: JSON.parse(r.dates) as number[] };
}
