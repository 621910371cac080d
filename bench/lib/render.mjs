/** The markdown report: machine, targets, headline figures, then one section per case. */
import { fmt, machineRows, table } from './report.mjs';
import { headlineRows } from './targets.mjs';
import { renderPostgresProfile } from './postgres-profile.mjs';

export async function renderReport(doc, { chartDir }) {
  const charts = [];
  const out = [];
  out.push(`# kiln benchmarks: ${doc.name}`);
  out.push('');
  out.push(`Reproduce: \`${doc.command}\` (it builds kiln first; needs Redis at 127.0.0.1:6379 for the BullMQ case, \`redis-server\` on the machine for the remote case (it starts its own) and PostgreSQL at 127.0.0.1:5432 for case 4 and the postgres case). Scale: **${doc.scale}**. Started ${doc.startedAt}, took ${fmt(doc.durationSec)} s.`);
  out.push('');
  out.push(table(['machine', ''], machineRows(doc)));
  out.push('');
  out.push('The machine is shared and noisy: every comparison below is measured side by side, interleaved (A B A B ...), in the same run, and the figures that matter are ratios. Each case runs in a process of its own. Ranges are min-max over repetitions.');
  out.push('');
  out.push('## Targets');
  out.push('');
  out.push(table(['target', 'result'], doc.targets.map((t) => [t.name, `${t.met === true ? '**met**' : t.met === false ? '**missed**' : 'n/a'}: ${t.verdict}`])));
  out.push('');
  const headline = headlineRows(doc);
  if (headline.length > 0) {
    out.push('## Headline figures');
    out.push('');
    out.push(table(['figure', 'value'], headline));
    out.push('');
  }
  for (const [id, entry] of Object.entries(doc.cases)) {
    out.push(`## ${entry.title}`);
    out.push('');
    out.push(`_case \`${id}\`, ${fmt(entry.durationSec)} s, load average before ${entry.loadAverageBefore.map((l) => l.toFixed(2)).join(' / ')}${entry.nodeFlags.length ? `, node flags \`${entry.nodeFlags.join(' ')}\`` : ''}${entry.retriedAfter ? `; run a second time after the first attempt failed (${entry.retriedAfter})` : ''}_`);
    out.push('');
    if (entry.error) {
      out.push(`**This case failed: ${entry.error}.** See the run's console output.`);
      out.push('');
      continue;
    }
    // Cases render themselves; they may look at other cases (the limits) through `doc`.
    const mod = await import(`../cases/${id}.mjs`);
    const { markdown, charts: caseCharts = [] } = mod.render(entry.result, doc);
    out.push(markdown);
    out.push('');
    for (const c of caseCharts) {
      charts.push(c);
      out.push(`![${c.alt ?? c.name}](${chartDir}/${c.name}.svg)`);
      out.push('');
    }
  }
  if (doc.profiles?.length > 0) out.push(renderProfiles(doc.profiles));
  return { markdown: out.join('\n'), charts };
}


function renderProfiles(profiles) {
  const out = ['## Profiles of the missed targets', ''];
  out.push('Each workload below ran again in a warm mode server under V8\'s CPU profiler (100 us sampling) on the main thread, where kiln\'s run engine, store (SQLite) and supervisor run; pool workers and spawned processes are other threads or processes and appear here only as idle time while the main thread waits for them. The .cpuprofile files are in the run\'s tmp/ folder (open them in Chrome DevTools or speedscope for a flame graph).');
  out.push('');
  for (const p of profiles) {
    out.push(`### ${p.label}`);
    out.push('');
    out.push(`Explains: ${p.targets.join('; ')}.`);
    out.push('');
    if (p.error) {
      out.push(`Profiling failed: ${p.error}`);
      out.push('');
      continue;
    }
    const busy = p.areas.filter((a) => a.area !== '(idle)').reduce((s, a) => s + a.selfMs, 0);
    out.push(`${fmt(p.tis)} task instances in ${fmt(p.wallMs)} ms under the profiler (${fmt(p.tis / (p.wallMs / 1000))} TI/s); main thread busy ${fmt((busy / p.totalMs) * 100)}% of the profiled time, ${fmt((busy * 1000) / p.tis)} us of it per task instance${p.transactions !== undefined ? `; ${fmt(p.transactions)} store transactions (\`store.write\` calls), ${fmt(p.transactions / p.tis)} per task instance` : ''}.`);
    out.push('');
    out.push(readProfile(p, busy));
    out.push('');
    out.push(table(['area (self time)', 'ms', '% of busy'], p.areas.filter((a) => a.area !== '(idle)').slice(0, 10).map((a) => [a.area, fmt(a.selfMs), `${fmt((a.selfMs / busy) * 100)}%`])));
    out.push('');
    out.push(table(['hottest functions (self time)', 'ms', '% of busy', 'area', 'where'], p.top.filter((f) => f.area !== '(idle)').slice(0, 12).map((f) => [`\`${f.name}\``, fmt(f.selfMs), `${fmt((f.selfMs / busy) * 100)}%`, f.area, f.where ? `\`${f.where}\`` : ''])));
    out.push('');
    out.push('Native frames (empty "where") are C++ called from JavaScript; by their JavaScript caller:');
    out.push('');
    if (p.nativeByCaller?.length) {
      out.push(table(['native function', 'called from', 'ms', '% of busy', 'what it is'], p.nativeByCaller.slice(0, 6).map((n) => [`\`${n.name}\``, `\`${n.caller}\` \`${n.where}\``, fmt(n.selfMs), `${fmt((n.selfMs / busy) * 100)}%`, nativeMeaning(n, p)])));
      out.push('');
    }
    if (p.inclusive?.length) {
      out.push(table(['kiln functions (inclusive time: with everything they call)', 'ms', '% of busy', 'where'], p.inclusive.slice(0, 12).map((f) => [`\`${f.name}\``, fmt(f.totalMs), `${fmt((f.totalMs / busy) * 100)}%`, `\`${f.where}\``])));
      out.push('');
    }
    if (p.hosts?.length) out.push(renderHostProfiles(p));
    if (p.postgres) out.push(renderPostgresProfile(p));
  }
  return out.join('\n');
}

/** The remote profile job's worker hosts (bench/lib/remote-profile.mjs): each one's main thread over its whole life. */
function renderHostProfiles(p) {
  const out = [`The ${p.hosts.length} \`kiln worker\` hosts (${p.isolation}, ${p.slotsPerHost} slots each) ran under \`node --cpu-prof\` for their whole life: start, a warm-up of 8 runs, the profiled repetitions, stop. Their main thread: BullMQ's Worker, the Redis client, kiln's worker host and its local supervisor (${p.isolation === 'thread' ? 'the pool\'s worker threads write profiles of their own, not read here' : 'the pool\'s child processes are not in it'}).`, ''];
  const ok = p.hosts.filter((h) => !h.error);
  for (const h of p.hosts.filter((x) => x.error)) out.push(`Host ${h.name}: ${h.error}.`, '');
  out.push(table(['host', 'profiled (its whole life)', 'main thread busy'], ok.map((h) => {
    const busy = h.areas.filter((a) => a.area !== '(idle)').reduce((s, a) => s + a.selfMs, 0);
    return [h.name, `${fmt(h.totalMs)} ms`, `${fmt(busy)} ms (${fmt((busy / h.totalMs) * 100)}%)`];
  })));
  out.push('');
  const h = ok[0];
  if (!h) return out.join('\n');
  const busy = h.areas.filter((a) => a.area !== '(idle)').reduce((s, a) => s + a.selfMs, 0);
  out.push(table([`host ${h.name}: area (self time)`, 'ms', '% of busy'], h.areas.filter((a) => a.area !== '(idle)').slice(0, 10).map((a) => [a.area, fmt(a.selfMs), `${fmt((a.selfMs / busy) * 100)}%`])));
  out.push('');
  out.push(table([`host ${h.name}: hottest functions (self time)`, 'ms', '% of busy', 'area', 'where'], h.top.filter((f) => f.area !== '(idle)').slice(0, 12).map((f) => [`\`${f.name}\``, fmt(f.selfMs), `${fmt((f.selfMs / busy) * 100)}%`, f.area, f.where ? `\`${f.where}\`` : ''])));
  out.push('');
  if (h.nativeByCaller?.length) {
    out.push(table([`host ${h.name}: native function`, 'called from', 'ms', '% of busy', 'what it is'], h.nativeByCaller.slice(0, 6).map((n) => [`\`${n.name}\``, `\`${n.caller}\` \`${n.where}\``, fmt(n.selfMs), `${fmt((n.selfMs / busy) * 100)}%`, nativeMeaning(n, p)])));
    out.push('');
  }
  if (h.inclusive?.length) {
    out.push(table([`host ${h.name}: kiln functions (inclusive)`, 'ms', '% of busy', 'where'], h.inclusive.slice(0, 10).map((f) => [`\`${f.name}\``, fmt(f.totalMs), `${fmt((f.totalMs / busy) * 100)}%`, `\`${f.where}\``])));
    out.push('');
  }
  return out.join('\n');
}

function nativeMeaning(n, p = {}) {
  // The bullmq executor's and the worker hosts' processes talk to Redis over TCP sockets.
  if (p.remote && (n.name === 'writeBuffer' || n.name === 'writeUtf8String') && /stream_base_commons/.test(n.where)) return 'socket write (a command to Redis)';
  if (p.postgres && (n.name === 'writeBuffer' || n.name === 'writeUtf8String' || n.name === 'writev') && /stream_base_commons/.test(n.where)) return 'socket write (statements to PostgreSQL)';
  if (n.name === 'run' && /better-sqlite3\/lib\/methods\/transaction/.test(n.where)) return 'SQLite BEGIN IMMEDIATE / COMMIT (one per engine flush)';
  if (n.name === 'run' && /drizzle-orm\/better-sqlite3/.test(n.where)) return 'SQLite executing a prepared statement';
  if (n.name === 'run') return 'SQLite statement';
  if (n.name === 'postMessage' && /piscina/.test(n.where)) return 'structured clone + wake of a worker thread (piscina task)';
  if (n.name === 'postMessage') return 'postMessage of the pool library (structured clone)';
  if (n.name === 'writeUtf8String') return 'IPC write to a child process (pipe)';
  if (n.name === 'dispatch' && /node:inspector/.test(n.where)) return 'the profiler\'s own inspector session';
  return '';
}

/** One sentence from the numbers: where the busy main-thread time of a profile went. */
function readProfile(p, busy) {
  const pct = (ms) => `${fmt((ms / busy) * 100)}%`;
  const native = p.nativeByCaller ?? [];
  const sum = (list) => list.reduce((s, n) => s + n.selfMs, 0);
  const tx = sum(native.filter((n) => n.name === 'run' && /better-sqlite3\/lib\/methods\/transaction/.test(n.where)));
  const stmt = sum(native.filter((n) => n.name === 'run' && !/better-sqlite3\/lib\/methods\/transaction/.test(n.where)));
  const messaging = sum(native.filter((n) => n.name === 'postMessage' || n.name === 'writeUtf8String'));
  const area = (prefix) => p.areas.filter((a) => a.area.startsWith(prefix)).reduce((s, a) => s + a.selfMs, 0);
  if (p.postgres) {
    const socket = sum(native.filter((n) => (n.name === 'writeBuffer' || n.name === 'writeUtf8String' || n.name === 'writev') && /stream_base_commons/.test(n.where)));
    const idle = p.areas.find((a) => a.area === '(idle)')?.selfMs ?? 0;
    return `**Reading:** the main thread is busy ${fmt((busy / p.totalMs) * 100)}% of the profiled time (idle ${fmt((idle / p.totalMs) * 100)}%: waiting, mostly for PostgreSQL's answers${p.schedulers ? '; at start also for the DAG folder\'s parse and the pool\'s warm-up' : ''}). Of its busy time, talking to PostgreSQL takes ${pct(socket + area('pg'))} (${pct(socket)} native socket writes, ${pct(area('pg'))} node-postgres's JavaScript: building and parsing the wire protocol), kiln's own JavaScript (engine, store, supervisor) ${pct(area('kiln'))}, drizzle's JavaScript ${pct(area('drizzle'))}, handing tasks to workers and reading their replies ${pct(sum(native.filter((n) => n.name === 'postMessage')) + area('piscina'))}, Node internals ${pct(area('Node'))}, GC ${pct(area('GC'))}.`;
  }
  if (p.remote) {
    const socket = sum(native.filter((n) => (n.name === 'writeBuffer' || n.name === 'writeUtf8String') && /stream_base_commons/.test(n.where)));
    return `**Reading:** of the scheduler's busy main-thread time, SQLite takes ${pct(tx + stmt)} (${pct(tx)} in BEGIN/COMMIT, ${pct(stmt)} executing statements), talking to Redis ${pct(socket + area('bullmq'))} (${pct(socket)} native socket writes, ${pct(area('bullmq'))} BullMQ's and ioredis's JavaScript), kiln's own JavaScript (engine, store, bullmq executor) ${pct(area('kiln'))}, Node internals ${pct(area('Node'))}, drizzle's JavaScript ${pct(area('drizzle'))}, GC ${pct(area('GC'))}.`;
  }
  return `**Reading:** of the main thread's busy time, SQLite takes ${pct(tx + stmt)} (${pct(tx)} in BEGIN/COMMIT, ${pct(stmt)} executing statements), handing tasks to workers and reading their replies ${pct(messaging + area('piscina'))} (native messaging plus the pool library's JavaScript), kiln's own JavaScript (engine, store, supervisor) ${pct(area('kiln'))}, drizzle's JavaScript ${pct(area('drizzle'))}, GC ${pct(area('GC'))}.`;
}
