/**
 * The bullmq executor end to end, as a user runs it: a Redis server of the test's own,
 * `kiln worker` processes (each in its own folder, its environment without any database
 * URL), and `kiln dags test --executor bullmq`. Every try of the fixture DAGs marks its start
 * with an exclusive create, so a try that starts twice fails its task and is caught.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLI, REPO, runKiln, scratchProject } from '../helpers/cli.js';
import { hasRedisServer, ownRedis, type OwnRedis } from '../helpers/own-redis.js';
import { until, withStore } from '../fixtures/scheduler/harness.js';

const FIXTURES = join(REPO, 'test/fixtures/remote');
const SETTINGS = { KILN_ZOMBIE_TIMEOUT: '3s', KILN_HEARTBEAT_INTERVAL: '300ms', KILN_KILL_GRACE: '1s', KILN_DRAIN: '0' };

interface Marker {
  task: string;
  try: number;
  host: string | null;
  pid: number;
  at: number;
  forbiddenEnv: string[];
  previousAlive?: boolean | null;
  sum?: number;
}

interface Background {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

let redis: OwnRedis | null = null;
const started: Background[] = [];

if (!hasRedisServer() && !process.env.CI) console.warn('no redis-server on this machine (Debian package redis-server): skipping the remote worker tests');

describe.skipIf(!hasRedisServer() && !process.env.CI)('bullmq executor with kiln worker hosts', () => {
  beforeAll(async () => {
    redis = await ownRedis('the remote worker tests');
  });
  afterEach(async () => {
    for (const p of started.splice(0)) {
      if (p.child.exitCode !== null || p.child.signalCode !== null) continue;
      for (const signal of ['SIGCONT', 'SIGKILL'] as const) {
        try {
          process.kill(-p.child.pid!, signal);
        } catch {
          p.child.kill(signal); // not a group leader
        }
      }
      await p.exited;
    }
  });
  afterAll(async () => {
    await redis?.destroy();
  });

  /** A background `kiln` process with KILN_* from `env` only, and never a database URL. */
  function startKiln(args: string[], cwd: string, env: Record<string, string> = {}, detached = false): Background {
    const full: Record<string, string | undefined> = { ...process.env };
    for (const key of Object.keys(full)) if (key.startsWith('KILN_') || key.includes('DATABASE_URL')) delete full[key];
    Object.assign(full, { CI: 'true', KILN_REDIS_URL: redis!.url, ...SETTINGS }, env);
    // detached: a process group of its own (with its pooled runners), to freeze like a host.
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env: full, stdio: ['ignore', 'pipe', 'pipe'], detached });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c));
    child.stderr!.on('data', (c: Buffer) => (out += c));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const p = { child, output: () => out, exited };
    started.push(p);
    return p;
  }

  async function startWorker(name: string, queues: string, slots = 2, detached = false, extraArgs: string[] = []): Promise<Background> {
    // A host of its own folder (logs), with the same DAG folder as the schedulers.
    const w = startKiln(['worker', '--queues', queues, '--slots', String(slots), '--name', name, ...extraArgs], scratchProject(`kiln-worker-${name}-`), { REMOTE_TEST_WORKER: name, KILN_DAGS_FOLDER: FIXTURES }, detached);
    await until(() => w.output().includes('consuming') || w.child.exitCode !== null, `worker ${name} to start`, 20_000);
    expect(w.output()).toContain('consuming');
    return w;
  }

  function dagsTest(cwd: string, file: string, params: Record<string, unknown>): Background {
    return startKiln(['dags', 'test', join(FIXTURES, file), '--executor', 'bullmq', '--json', '--params', JSON.stringify(params)], cwd);
  }

  async function report(p: Background): Promise<{ state: string; runId: string; tasks: Array<{ taskId: string; state: string; tries: number; error: string | null }> }> {
    const code = await Promise.race([p.exited, new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 90_000))]);
    expect(code, p.output()).toBe(0);
    return JSON.parse(p.output().slice(p.output().indexOf('{'))) as never;
  }

  function markers(dir: string): Marker[] {
    return readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as Marker);
  }

  function project(): { cwd: string; markerDir: string } {
    const cwd = scratchProject('kiln-remote-');
    const markerDir = join(cwd, 'markers');
    mkdirSync(markerDir);
    return { cwd, markerDir };
  }

  it('routes 50 tasks over 2 queues and 3 hosts only to hosts that serve their queue, passes XComs between hosts, keeps the database away from workers', async () => {
    await Promise.all([startWorker('w-default', 'default'), startWorker('w-gpu', 'gpu'), startWorker('w-both', 'default,gpu')]);
    const { cwd, markerDir } = project();
    const result = await report(dagsTest(cwd, 'routing.ts', { markerDir }));
    expect(result.state).toBe('success');
    expect(result.tasks.every((t) => t.state === 'success' && t.tries === 1)).toBe(true);
    const all = markers(markerDir);
    expect(all).toHaveLength(51);
    for (const m of all) {
      expect([m.task.startsWith('cpu') ? 'w-default' : 'w-gpu', 'w-both'], m.task).toContain(m.host);
      expect(m.forbiddenEnv, m.task).toEqual([]);
    }
    // Both queues were shared between their two hosts.
    expect(new Set(all.filter((m) => m.task.startsWith('cpu')).map((m) => m.host)).size).toBe(2);
    expect(new Set(all.filter((m) => m.task.startsWith('gpu')).map((m) => m.host)).size).toBe(2);
    // total read the XComs of tasks that ran on other hosts.
    const total = all.find((m) => m.task === 'total')!;
    expect(total.sum).toBe(300 + 30_000);
    expect(all.filter((m) => m.host !== total.host).length).toBeGreaterThan(0);
    // A short try reports its start with its result (STARTED_HOLD_MS in worker-host.ts): the
    // start is recorded all the same, with the process the host ran it in.
    const shown = JSON.parse((await runKiln(['runs', 'show', 'routing', result.runId, '--json'], { cwd })).stdout) as { tasks: Array<{ taskId: string; pid: number | null; startedAt: number | null }> };
    expect(shown.tasks.filter((t) => t.pid === null || t.startedAt === null)).toEqual([]);
    // Its log came back to the scheduler's logs folder (the workers write in their own).
    const logs = await runKiln(['tasks', 'logs', 'routing', result.runId, 'total'], { cwd });
    expect(logs.stdout).toContain('total 30300');
    const list = await runKiln(['workers', 'list', '--json'], { cwd, env: { KILN_REDIS_URL: redis!.url } });
    const hosts = (JSON.parse(list.stdout) as { workers: Array<{ name: string; queues: string[]; slots: number; running: number }> }).workers;
    expect(hosts.map((h) => `${h.name}:${h.queues.join('+')}:${h.slots}`).sort()).toEqual(['w-both:default+gpu:2', 'w-default:default:2', 'w-gpu:gpu:2']);
  }, 120_000);

  it('a worker host stopped by SIGTERM drains for --drain, then cancels its try and exits; a second signal exits at once', async () => {
    const draining = await startWorker('w-drain', 'default', 1, false, ['--drain', '1s']);
    const { cwd, markerDir } = project();
    const run = dagsTest(cwd, 'slow.ts', { markerDir });
    await until(() => existsSync(join(markerDir, 'long.1.json')), 'the first try to start');
    const signalledAt = Date.now();
    draining.child.kill('SIGTERM');
    expect(await draining.exited).toBe(0);
    // The drain (1 s), then the cancel and the runner's end (kill grace 1 s).
    expect(Date.now() - signalledAt).toBeLessThan(6_000);
    expect(draining.output()).toMatch(/SIGTERM: no new tries/);
    // The cancelled try failed; its retry waits, and the scheduler says why, until a host comes.
    await until(() => run.output().includes("tries wait in queue 'default' and no live worker host consumes it"), 'the warning about the queue nobody consumes', 20_000);
    const next = await startWorker('w-next', 'default', 1);
    const result = await report(run);
    expect(result.tasks[0]).toMatchObject({ taskId: 'long', state: 'success', tries: 2 });
    next.child.kill('SIGKILL');
    await next.exited;

    const stubborn = await startWorker('w-stubborn', 'default', 1, false, ['--drain', '60s']);
    const second = project();
    dagsTest(second.cwd, 'frozen.ts', { markerDir: second.markerDir });
    await until(() => existsSync(join(second.markerDir, 'work.1.json')), 'the try on w-stubborn to start');
    expect(markers(second.markerDir)[0]!.host).toBe('w-stubborn');
    stubborn.child.kill('SIGTERM');
    await until(() => stubborn.output().includes('SIGTERM: no new tries'), 'the drain to begin');
    expect(stubborn.child.exitCode).toBeNull();
    const againAt = Date.now();
    stubborn.child.kill('SIGTERM');
    expect(await stubborn.exited).toBe(1);
    expect(Date.now() - againAt).toBeLessThan(2_000);
  }, 120_000);

  it('fails the try of a worker host killed mid-task as `worker host lost` and retries it on another host, never two at once', async () => {
    const first = await startWorker('w-one', 'default', 1);
    const second = await startWorker('w-two', 'default', 1);
    const { cwd, markerDir } = project();
    const run = dagsTest(cwd, 'slow.ts', { markerDir });
    const try1 = await until(() => (existsSync(join(markerDir, 'long.1.json')) ? markers(markerDir)[0] : undefined), 'the first try to start');
    const victim = try1.host === 'w-one' ? first : second;
    const killedAt = Date.now();
    victim.child.kill('SIGKILL');
    const result = await report(run);
    expect(result.state).toBe('success');
    expect(result.tasks[0]).toMatchObject({ taskId: 'long', state: 'success', tries: 2 });
    const try2 = markers(markerDir).find((m) => m.try === 2)!;
    expect(try2.host).not.toBe(try1.host);
    expect(try2.previousAlive).toBe(false);
    // Within zombieTimeoutMs (3 s) of polls, plus a tick or two.
    expect(try2.at - killedAt).toBeLessThan(10_000);
  }, 120_000);

  it('a scheduler SIGKILLed while its try runs on a host: the next one adopts the job by its id; the try runs once, its heartbeats and XCom pull reach the new scheduler', async () => {
    await Promise.all([startWorker('w-x', 'default', 1), startWorker('w-y', 'default', 1)]);
    const { cwd, markerDir } = project();
    const env = { KILN_DAGS_FOLDER: FIXTURES, KILN_DATABASE_URL: `sqlite:${join(cwd, '.kiln/kiln.db')}`, KILN_SCHEDULER_INTERVAL: '200ms' };
    const first = startKiln(['scheduler', '--executor', 'bullmq', '--takeover-after', '1s'], cwd, env);
    const trigger = await runKiln(['dags', 'trigger', 'adopt', '--params', JSON.stringify({ markerDir, sleepMs: 6_000 })], { cwd, env: { ...env, KILN_REDIS_URL: redis!.url } });
    expect(trigger.code, trigger.stderr).toBe(0);
    await until(() => existsSync(join(markerDir, 'long.1.json')), 'the first try to start', 60_000).catch((err: Error) => {
      throw new Error(`${err.message}\nscheduler:\n${first.output()}`);
    });
    first.child.kill('SIGKILL');
    await first.exited;
    // Past the zombie timeout (3 s) the try still runs: the new scheduler hears its heartbeats.
    const second = startKiln(['scheduler', '--executor', 'bullmq', '--takeover-after', '1s', '--exit-when-idle'], cwd, env);
    const code = await Promise.race([second.exited, new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 60_000))]);
    expect(code, second.output()).toBe(0);
    const runs = JSON.parse((await runKiln(['runs', 'list', 'adopt', '--json'], { cwd, env })).stdout) as { runs: Array<{ runId: string; state: string }> };
    expect(runs.runs[0]!.state).toBe('success');
    const show = JSON.parse((await runKiln(['runs', 'show', 'adopt', runs.runs[0]!.runId, '--json'], { cwd, env })).stdout) as { tasks: Array<{ taskId: string; state: string; tryNumber: number }> };
    expect(show.tasks.find((t) => t.taskId === 'long')).toMatchObject({ state: 'success', tryNumber: 1 });
    // One start: adopted, not cancelled and run again.
    expect(markers(markerDir).filter((m) => m.task === 'long').map((m) => m.try)).toEqual([1]);
    // Its XCom pull, made after the takeover, was answered by the new scheduler.
    await withStore(env.KILN_DATABASE_URL, async (store) => expect(await store.getXcom({ dagId: 'adopt', runId: runs.runs[0]!.runId, taskId: 'long' })).toBe(42));
  }, 120_000);

  it('a host frozen (SIGSTOP) past its lock: its try is lost and retried elsewhere; resumed, it cancels the stale try, whose result is ignored', async () => {
    const hosts = await Promise.all([startWorker('w-f1', 'default', 1, true), startWorker('w-f2', 'default', 1, true)]);
    const { cwd, markerDir } = project();
    const env = { KILN_DAGS_FOLDER: FIXTURES, KILN_DATABASE_URL: `sqlite:${join(cwd, '.kiln/kiln.db')}`, KILN_SCHEDULER_INTERVAL: '200ms' };
    startKiln(['scheduler', '--executor', 'bullmq'], cwd, env);
    const trigger = await runKiln(['dags', 'trigger', 'frozen', '--params', JSON.stringify({ markerDir })], { cwd, env });
    expect(trigger.code, trigger.stderr).toBe(0);
    await until(() => existsSync(join(markerDir, 'work.1.json')), 'the first try to start', 60_000);
    const try1 = markers(markerDir)[0]!;
    const frozen = hosts.find((h) => h.output().includes(`${try1.host}-`))!;
    process.kill(-frozen.child.pid!, 'SIGSTOP');
    const runState = async () => JSON.parse((await runKiln(['runs', 'list', 'frozen', '--json'], { cwd, env })).stdout) as { runs: Array<{ state: string; runId: string }> };
    await until(async () => (await runState()).runs[0]?.state === 'success', 'the retry on the other host to succeed', 60_000);
    const try2 = markers(markerDir).find((m) => m.try === 2)!;
    expect(try2.host).not.toBe(try1.host);
    process.kill(-frozen.child.pid!, 'SIGCONT');
    const resumedAt = Date.now();
    // Resumed, the host cancels its stale try at once instead of letting it run its 20 s.
    await until(() => /silent for \d+s|lost the job's lock/.test(frozen.output()), 'the resumed host to give its try up', 10_000);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const progress = readFileSync(join(markerDir, 'progress.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { try: number; t: number });
    expect(progress.filter((p) => p.try === 1 && p.t > resumedAt + 1_000)).toEqual([]);
    const second = progress.filter((p) => p.try === 2).map((p) => p.t);
    // Nothing of try 1 happened while try 2 ran: it was frozen, then stopped.
    expect(progress.filter((p) => p.try === 1 && p.t >= Math.min(...second) && p.t <= Math.max(...second))).toEqual([]);
    // Its late result changed nothing: the task instance is still try 2's success.
    const show = await runKiln(['runs', 'show', 'frozen', (await runState()).runs[0]!.runId, '--json'], { cwd, env });
    expect(show.stdout).toMatch(/"state": "success"/);
    expect(show.stdout).toMatch(/"tryNumber": 2/);
  }, 120_000);

  it('finishes the run when Redis restarts mid-run with its data, and when it comes back empty; no try starts twice', async () => {
    await Promise.all([startWorker('w-a', 'default'), startWorker('w-b', 'default')]);
    for (const empty of [false, true]) {
      const { cwd, markerDir } = project();
      const run = dagsTest(cwd, 'chain.ts', { markerDir, sleepMs: 400 });
      await until(() => existsSync(join(markerDir, 't2.1.json')), 't2 to start');
      await redis!.restart({ empty, downMs: 300 });
      const result = await report(run);
      if (process.env.KILN_TEST_DEBUG) console.log(empty, JSON.stringify(result.tasks.map((t) => [t.taskId, t.tries, t.error])), run.output().slice(0, run.output().indexOf('{')));
      expect(result.state, `${empty ? 'empty' : 'with data'}: ${run.output()}`).toBe('success');
      const all = markers(markerDir);
      // Each marker is an exclusive create: a try started twice would have failed its task.
      expect(new Set(all.map((m) => `${m.task}.${m.try}`)).size).toBe(all.length);
      expect(result.tasks.map((t) => t.taskId).sort()).toEqual(['t1', 't2', 't3', 't4', 't5', 't6']);
      // With its data (append-only file), Redis lost nothing: no try failed. Empty, the running
      // try's job was gone: that try failed as lost and ran again under the next try number.
      if (!empty) expect(result.tasks.map((t) => t.tries)).toEqual([1, 1, 1, 1, 1, 1]);
    }
  }, 180_000);
  it('kiln worker --metrics serves /metrics of the tries it ran, with the scheduler\'s names and labels, never a run id', async () => {
    const w = await startWorker('w-metrics', 'default', 2, false, ['--isolation', 'thread', '--metrics', '127.0.0.1:0', '--log-format', 'json']);
    // --log-format json: one object per line, with the host's name.
    const lines = w.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: string; msg: string; worker: string });
    expect(lines.find((l) => l.msg.includes('consuming')), w.output()).toMatchObject({ level: 'info', worker: 'w-metrics' });
    const url = /serving metrics at (http:\/\/[^\s"]+\/metrics)/.exec(w.output())?.[1];
    expect(url, w.output()).toBeDefined();
    const { cwd } = project();
    const run = dagsTest(cwd, 'metrics.ts', {});
    await Promise.race([run.exited, new Promise((resolve) => setTimeout(resolve, 90_000))]);
    const result = JSON.parse(run.output().slice(run.output().indexOf('{'))) as { state: string; runId: string; tasks: Array<{ taskId: string; state: string }> };
    expect(result.state, run.output()).toBe('failed');
    expect(Object.fromEntries(result.tasks.map((t) => [t.taskId, t.state]))).toEqual({ ok1: 'success', ok2: 'success', ok3: 'success', boom: 'failed' });

    const res = await fetch(url!);
    expect(res.status).toBe(200);
    const body = await res.text();
    const sample = (series: string): number | undefined => {
      const line = body.split('\n').find((l) => l.startsWith(`${series} `));
      return line === undefined ? undefined : Number(line.slice(series.length + 1));
    };
    const dag = 'dag_id="remote_metrics"';
    expect(sample(`kiln_task_instance_starts_total{${dag}}`), body).toBe(4);
    expect(sample(`kiln_task_try_exits_total{${dag},reason="exception",signal=""}`), body).toBe(1);
    expect(sample(`kiln_task_try_duration_seconds_count{${dag},isolation="thread",state="success"}`), body).toBe(3);
    expect(sample(`kiln_task_try_duration_seconds_count{${dag},isolation="thread",state="failed"}`), body).toBe(1);
    expect(sample(`kiln_task_queued_duration_seconds_count{${dag},isolation="thread"}`), body).toBe(4);
    expect(sample(`kiln_task_try_peak_rss_bytes_count{${dag},isolation="thread"}`), body).toBe(4);
    // The worker pool (pre-warmed thread pool) and Node's own process metrics.
    expect(body).toMatch(/^kiln_worker_pool_workers\{isolation="thread",state="idle"\} \d+$/m);
    expect(body).toMatch(/^# TYPE kiln_worker_recycles_total counter$/m);
    expect(body).toMatch(/^process_cpu_user_seconds_total \d/m);
    expect(body).toMatch(/^kiln_executor_slots\{state="open"\} 2$/m);
    // Labels as the scheduler's: never a run id, no task_id without metricsTaskLabels, no series of the scheduler's own.
    expect(body).not.toContain(result.runId);
    expect(body).not.toMatch(/run_id|task_id=/);
    expect(body).not.toMatch(/^kiln_task_instance_finishes_total\{/m);
  }, 120_000);
});
