/**
 * Reads V8 .cpuprofile files (node --cpu-prof) and says where the time went: the hottest
 * functions by self time, and self time grouped by area (kiln's engine, store, executor,
 * runners, remote parts, drizzle, better-sqlite3, pool libraries, BullMQ and its Redis
 * client, node-postgres, Node internals, GC, idle).
 */
import { readFileSync } from 'node:fs';

const AREAS = [
  ['(idle)', (f) => f.functionName === '(idle)'],
  ['GC', (f) => f.functionName === '(garbage collector)'],
  ['(program) / native', (f) => f.functionName === '(program)' || (f.url === '' && f.functionName !== '(root)')],
  ['kiln run engine / scheduler', (f) => /\/dist\/src\/scheduler\//.test(f.url)],
  ['kiln store', (f) => /\/dist\/src\/store\//.test(f.url)],
  ['kiln executor (supervisor)', (f) => /\/dist\/src\/executor\//.test(f.url)],
  ['kiln runners (workers/)', (f) => /\/dist\/workers\//.test(f.url)],
  ['kiln remote (bullmq executor, worker host)', (f) => /\/dist\/src\/remote\//.test(f.url)],
  ['kiln other', (f) => /\/dist\/src\//.test(f.url)],
  ['drizzle-orm', (f) => /node_modules\/drizzle-orm\//.test(f.url)],
  ['better-sqlite3', (f) => /node_modules\/better-sqlite3\//.test(f.url)],
  ['piscina / tinypool', (f) => /node_modules\/(piscina|tinypool)\//.test(f.url)],
  ['bullmq / ioredis', (f) => /node_modules\/(bullmq|ioredis|@ioredis|msgpackr|cluster-key-slot|redis-parser|redis-errors|denque|standard-as-callback)\//.test(f.url)],
  ['pg (node-postgres)', (f) => /node_modules\/(pg|pg-pool|pg-protocol|pg-types|pg-connection-string|pg-int8|postgres-array|postgres-bytea|postgres-date|postgres-interval|pgpass|split2)\//.test(f.url)],
  ['execa / other deps', (f) => /node_modules\//.test(f.url)],
  ['DAG file / bench', (f) => /\.(m?ts|m?js)$/.test(f.url) && !/node:/.test(f.url)],
  ['Node internals', (f) => f.url.startsWith('node:')],
];

export function areaOf(frame) {
  for (const [name, test] of AREAS) if (test(frame)) return name;
  return 'other';
}

function shortUrl(url) {
  return url.replace(/^file:\/\/.*?\/(dist|node_modules|bench|examples)\//, '$1/').replace(/^file:\/\/\/tmp\/[^/]+\//, 'tmp/');
}

/**
 * { totalMs, functions: [{ name, where, area, selfMs }], areas: [{ area, selfMs }],
 *   inclusive: [{ name, where, area, totalMs }] } for one profile. Inclusive time counts a
 * function once per sample however often it is on the stack.
 */
export function summarizeProfile(file) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const functions = new Map();
  const areas = new Map();
  let totalUs = 0;
  for (const [id, us] of selfUs) {
    const f = byId.get(id).callFrame;
    totalUs += us;
    const where = f.url ? `${shortUrl(f.url)}:${f.lineNumber + 1}` : '';
    const key = `${f.functionName}\u0000${where}`;
    const area = areaOf(f);
    const entry = functions.get(key) ?? { name: f.functionName || '(anonymous)', where, area, selfMs: 0 };
    entry.selfMs += us / 1000;
    functions.set(key, entry);
    areas.set(area, (areas.get(area) ?? 0) + us / 1000);
  }
  // Inclusive: walk each sampled node's stack to the root.
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // Native frames (C++ called from JavaScript) by their JavaScript caller: tells a SQLite
  // statement from the BEGIN/COMMIT of better-sqlite3's transaction wrapper.
  const nativeByCaller = new Map();
  for (const [id, us] of selfUs) {
    const f = byId.get(id).callFrame;
    if (f.url !== '' || f.functionName.startsWith('(')) continue;
    let caller = parent.get(id);
    while (caller !== undefined && byId.get(caller).callFrame.url === '') caller = parent.get(caller);
    const c = caller === undefined ? null : byId.get(caller).callFrame;
    const where = c ? `${shortUrl(c.url)}:${c.lineNumber + 1}` : '';
    const key = `${f.functionName}\u0000${c?.functionName}\u0000${where}`;
    const entry = nativeByCaller.get(key) ?? { name: f.functionName, caller: c ? c.functionName || '(anonymous)' : '', where, selfMs: 0 };
    entry.selfMs += us / 1000;
    nativeByCaller.set(key, entry);
  }
  const inclusive = new Map();
  for (const [id, us] of selfUs) {
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur).callFrame;
      if (!f.url) continue;
      const where = `${shortUrl(f.url)}:${f.lineNumber + 1}`;
      const key = `${f.functionName}\u0000${where}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const entry = inclusive.get(key) ?? { name: f.functionName || '(anonymous)', where, area: areaOf(f), totalMs: 0 };
      entry.totalMs += us / 1000;
      inclusive.set(key, entry);
    }
  }
  return {
    nativeByCaller: [...nativeByCaller.values()].sort((a, b) => b.selfMs - a.selfMs),
    inclusive: [...inclusive.values()].sort((a, b) => b.totalMs - a.totalMs),
    totalMs: totalUs / 1000,
    functions: [...functions.values()].sort((a, b) => b.selfMs - a.selfMs),
    areas: [...areas.entries()].map(([area, selfMs]) => ({ area, selfMs })).sort((a, b) => b.selfMs - a.selfMs),
  };
}
