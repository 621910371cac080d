/**
 * The benchmark harness keeps working: every case at its smallest scale (`--smoke`) runs
 * and writes the JSON result, the markdown report and its SVG charts with the expected
 * shape. Times are never asserted: this machine may be busy with other tests.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { hasRedisServer } from '../helpers/own-redis.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const REDIS_URL = new URL(process.env.KILN_TEST_REDIS_URL || 'redis://127.0.0.1:6379');

function redisAnswers(): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: REDIS_URL.hostname, port: Number(REDIS_URL.port || 6379) });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function runBench(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(REPO, 'bench/run.mjs'), ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c));
    child.stderr.on('data', (c: Buffer) => (output += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

interface Summary {
  median: number | null;
  min: number | null;
  max: number | null;
  n: number;
}

const positive = (s: Summary) => {
  expect(s.n).toBeGreaterThan(0);
  expect(s.median).toBeGreaterThan(0);
};

describe('bench harness (smoke scale)', () => {
  it('runs every case and writes the JSON, the report and the charts', async () => {
    const redis = await redisAnswers();
    // The remote case starts a redis-server of its own; without one it skips itself, with a note.
    const redisServer = hasRedisServer();
    if (!redisServer && process.env.CI) throw new Error('no redis-server on this machine (Debian package redis-server); CI is set, so the remote case may not be skipped');
    if (!redisServer) console.warn('no redis-server on this machine (Debian package redis-server): the smoke run skips the remote case');
    if (!redis && process.env.CI) throw new Error(`Redis not reachable at ${REDIS_URL.href}; CI is set, so the BullMQ case may not be skipped`);
    if (!redis) console.warn(`Redis not reachable at ${REDIS_URL.href}: the smoke run skips the BullMQ case`);
    const out = mkdtempSync(join(tmpdir(), 'kiln-bench-smoke-'));
    const res = await runBench(['--smoke', '--out', out, '--name', 'smoke', ...(redis ? [] : ['--skip', 'bullmq'])]);
    expect(res.code, res.output).toBe(0);

    const doc = JSON.parse(readFileSync(join(out, 'smoke.json'), 'utf8'));
    expect(doc).toMatchObject({ kind: 'kiln-bench', scale: 'smoke', name: 'smoke' });
    expect(doc.machine).toMatchObject({ cores: expect.any(Number), memoryBytes: expect.any(Number), node: process.version });
    expect(typeof doc.machine.cpuModel).toBe('string');
    expect(doc.machine.loadAverage).toHaveLength(3);
    for (const [id, entry] of Object.entries<{ error?: string; result?: unknown }>(doc.cases)) {
      expect(entry.error, `case ${id}`).toBeUndefined();
      expect(entry.result, `case ${id}`).toBeDefined();
    }
    const cases = doc.cases;

    positive(cases.limits.result.piscina.tasksPerSec);
    positive(cases.limits.result.tinypool.tasksPerSec);
    positive(cases.limits.result.spawn.startMs);

    const [scenario] = cases['executor-modes'].result.scenarios;
    expect(scenario.id).toBe('noop-12x1');
    for (const mode of ['thread', 'process', 'spawn']) {
      const m = scenario.modes[mode];
      expect(m.tis, mode).toBe(12);
      positive(m.wallMs);
      positive(m.tiPerSec);
      expect(m.overheadMs.n).toBe(12 * m.reps);
      expect(m.peakRssBytes.median).toBeGreaterThan(0);
    }
    expect(scenario.speedupOverSpawn.thread).toBeGreaterThan(0);

    const dagsTest = cases['dags-test'].result;
    positive(dagsTest.byExecutor.thread.warmChainMsPerTask);
    positive(dagsTest.byExecutor.thread.perTaskMsPerTask);
    expect(dagsTest.headline.perTaskMs).toBeGreaterThan(0);

    const memory = cases['scheduler-memory'].result;
    for (const tasks of ['100', '1000']) {
      expect(memory.sizes[tasks].kiln.bytesPerLoop).toBeGreaterThan(0);
      expect(memory.sizes[tasks].naive.bytesPerLoop).toBeGreaterThan(0);
    }

    const prepared = cases.prepared.result;
    expect(prepared.results.length).toBeGreaterThanOrEqual(4);
    for (const r of prepared.results) {
      positive(r.prepared);
      positive(r.unprepared);
    }

    const metrics = cases.metrics.result;
    for (const v of ['off', 'on']) {
      expect(metrics.variants[v].tis, v).toBe(80);
      positive(metrics.variants[v].tiPerSec);
    }
    expect(metrics.ratio).toBeGreaterThan(0);
    expect(metrics.check.finishesSuccess).toBe(metrics.check.tisOn);

    const web = cases.web.result;
    expect(web.params).toMatchObject({ runs: 10, tasks: 10, cells: 100 });
    positive(web.grid.serverMs);
    positive(web.grid.httpMs);
    expect(web.log.firstMs).toBeGreaterThan(0);
    positive(web.log.ms);
    positive(web.log.streamFirstEventMs);
    // The Chromium part is skipped, with a note, where /usr/bin/chromium is missing.
    if (existsSync('/usr/bin/chromium')) {
      positive(web.browser.paintedMs);
      positive(web.browser.logOpenMs);
    } else expect(web.browser.skipped).toMatch(/not found/);

    const mapping = cases.mapping.result;
    expect(mapping.params.items).toBe(300);
    for (const executor of ['thread', 'process']) {
      for (const shape of ['mapped', 'static']) {
        const m = mapping.byExecutor[executor][shape];
        expect(m.tis, `${executor} ${shape}`).toBe(301);
        positive(m.tiPerSec);
        positive(m.peakRssBytes);
        positive(m.processPeakRssBytes);
      }
      expect(mapping.byExecutor[executor].ratio.tiPerSec).toBeGreaterThan(0);
    }
    expect(mapping.expansion.rows).toBe(300);
    positive(mapping.expansion.planMs);
    positive(mapping.expansion.writeMs);
    positive(mapping.expansion.staticCreateRunMs);

    const remote = cases.remote.result;
    if (redisServer) {
      expect(remote.params).toMatchObject({ runs: 2, tasks: 5, hosts: 2 });
      for (const isolation of ['thread', 'process']) {
        const x = remote.byIsolation[isolation];
        for (const side of [x.remote, x.local]) {
          expect(side.tis, isolation).toBe(10);
          positive(side.tiPerSec);
          expect(side.latencyMs.n).toBe(10 * side.reps);
          expect(side.latencyMs.p50).toBeGreaterThan(0);
          expect(side.cpuMsPerTi.total).toBeGreaterThanOrEqual(0);
        }
        expect(x.ratio).toBeGreaterThan(0);
        expect(typeof x.addedLatencyMs.p50).toBe('number');
        expect(x.idle.remote.latencyMs.n).toBe(5 * x.idle.remote.reps);
      }
    } else expect(remote.skipped).toMatch(/redis-server/);

    if (redis) {
      positive(cases.bullmq.result.bullmq.jobsPerSec);
      positive(cases.bullmq.result.thread.jobsPerSec);
      // Like with like: BullMQ's sandboxed child processes beside its worker threads.
      positive(cases.bullmq.result.bullmqProcess.jobsPerSec);
      expect(cases.bullmq.result.bullmqProcess.children.processes).toBeGreaterThan(0);
      expect(cases.bullmq.result.ratios.processOverBullmqProcess).toBeGreaterThan(0);
    }

    // The postgres case makes a database of its own on the server at 127.0.0.1:5432; without a
    // server it skips itself, with a note (never in CI).
    const postgres = cases.postgres.result;
    if (postgres.skipped) {
      if (process.env.CI) throw new Error(`${postgres.skipped}; CI is set, so the postgres case may not be skipped`);
      console.warn(postgres.skipped);
    } else {
      expect(postgres.e2e).toMatchObject({ runs: 2, tasks: 40 });
      for (const side of ['sqlite', 'postgres']) {
        expect(postgres.e2e[side].tis, side).toBe(80);
        positive(postgres.e2e[side].tiPerSec);
      }
      expect(postgres.e2e.postgres.roundTripsPerTi).toBeGreaterThan(0);
      expect(postgres.e2e.ratio).toBeGreaterThan(0);
      expect(postgres.schedulers).toMatchObject({ runs: 4, tasks: 40 });
      for (const side of ['one', 'two']) {
        expect(postgres.schedulers[side].tis, side).toBe(160);
        positive(postgres.schedulers[side].tiPerSec);
      }
      expect(postgres.schedulers.ratio).toBeGreaterThan(0);
    }

    expect(doc.targets.length).toBeGreaterThanOrEqual(10);
    for (const t of doc.targets) expect(typeof t.verdict).toBe('string');

    const md = readFileSync(join(out, 'smoke.md'), 'utf8');
    expect(md).toContain('## Targets');
    expect(md).toContain(doc.machine.cpuModel);
    const charts = readdirSync(join(out, 'smoke')).filter((f) => f.endsWith('.svg'));
    expect(charts.length).toBeGreaterThanOrEqual(5);
    for (const c of charts) {
      expect(md).toContain(`smoke/${c}`);
      expect(readFileSync(join(out, 'smoke', c), 'utf8')).toMatch(/^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    }
    expect(existsSync(join(out, 'tmp'))).toBe(true);
  }, 300_000);
});
