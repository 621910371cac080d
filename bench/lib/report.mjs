/** Markdown helpers shared by the cases' render functions. */
import { formatNumber } from './svg.mjs';

export const fmt = formatNumber;

/** "median (min-max)" of a summary, with an optional unit. */
export function fmtSummary(s, unit = '', digits) {
  if (!s || s.median === null || s.median === undefined) return 'n/a';
  const u = unit ? ` ${unit}` : '';
  if (s.n <= 1 || s.min === s.max) return `${fmt(s.median, digits)}${u}`;
  return `${fmt(s.median, digits)}${u} (${fmt(s.min, digits)}-${fmt(s.max, digits)})`;
}

export function fmtRatio(v) {
  return v === null || v === undefined ? 'n/a' : `${fmt(v)}x`;
}

export function fmtBytes(v) {
  if (v === null || v === undefined) return 'n/a';
  if (Math.abs(v) >= 1024 * 1024) return `${fmt(v / (1024 * 1024))} MiB`;
  if (Math.abs(v) >= 1024) return `${fmt(v / 1024)} KiB`;
  return `${Math.round(v)} B`;
}

export function fmtPercent(v) {
  return v === null || v === undefined ? 'n/a' : `${fmt(v * 100)}%`;
}

export function table(headers, rows) {
  const line = (cells) => `| ${cells.map((c) => String(c ?? '').replace(/\|/g, '\\|')).join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n');
}

/**
 * A target line for the report and the JSON: met, or missed by how much.
 * `better` is 'higher' (throughput, speedup) or 'lower' (latency, ratio to a ceiling).
 */
export function target(name, value, goal, better, unit = '') {
  if (value === null || value === undefined) return { name, goal, better, value: null, met: null, verdict: 'not measured' };
  const met = better === 'higher' ? value >= goal : value <= goal;
  const u = unit === 'x' || unit === '%' ? unit : unit ? ` ${unit}` : '';
  let verdict;
  if (met) verdict = `${fmt(value)}${u} ${better === 'higher' ? '>=' : '<='} ${fmt(goal)}${u}`;
  else if (better === 'higher') verdict = `${fmt(value)}${u} is ${fmt((value / goal) * 100)}% of ${fmt(goal)}${u} (short by ${fmt(goal - value)}${u})`;
  else verdict = `${fmt(value)}${u} is ${fmt(value / goal)}x the limit of ${fmt(goal)}${u} (over by ${fmt(value - goal)}${u})`;
  return { name, goal, better, value, unit, met, verdict };
}

/** The machine table every report opens with: what ran the figures, and how loaded it was. */
export function machineRows(doc) {
  const m = doc.machine;
  const loads = (l) => l.map((x) => x.toFixed(2)).join(' / ');
  return [
    ['CPU', m.cpuModel],
    ['cores', m.cores],
    ['memory', `${fmt(m.memoryBytes / 2 ** 30)} GiB (${fmt(m.freeMemoryBytes / 2 ** 30)} GiB free at start)`],
    ['OS', m.os],
    ['Node.js', `${m.node} (V8 ${m.v8})`],
    ['load average at start (1/5/15 min)', loads(m.loadAverage)],
    ['load average at end', loads(doc.loadAverageEnd)],
    ['kiln commit', `${m.commit ?? 'unknown'}${m.uncommitted?.length ? ` plus uncommitted changes in src/ and workers/ (built into dist/ for this run): ${m.uncommitted.map((l) => `\`${l}\``).join(', ')}` : ' (src/ and workers/ as committed)'}`],
  ];
}
