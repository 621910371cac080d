/**
 * `kiln webserver` as a user runs it: the address from KILN_WEBSERVER_HOST/PORT (or flags),
 * the URL printed on start, the UI's page and the API served, a clean exit on SIGTERM; and
 * the `--webserver [address]` forms the scheduler accepts.
 */
import { spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { webserverAddress } from '../../src/cli/commands/webserver.js';
import { CLI, runKiln, scratchProject } from '../helpers/cli.js';
import { openSse } from '../helpers/sse.js';
import { WEB_FIXTURES } from './web-setup.js';
import { until } from '../fixtures/scheduler/harness.js';

describe('kiln webserver', () => {
  it('serves the UI and the API at the configured address and stops on SIGTERM', async () => {
    const cwd = scratchProject('kiln-webserver-');
    const env: Record<string, string | undefined> = { ...process.env, KILN_DATABASE_URL: `sqlite:${join(cwd, 'kiln.db')}`, KILN_WEBSERVER_HOST: '127.0.0.1', KILN_WEBSERVER_PORT: '0' };
    const child = spawn(process.execPath, [CLI, 'webserver'], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c));
    child.stderr.on('data', (c: Buffer) => (out += c));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      const printed = await until(() => /kiln web UI: (http:\/\/127\.0\.0\.1:\d+\/\?token=\S+)/.exec(out)?.[1], 'the URL to be printed');
      const url = `${new URL(printed).origin}/`;
      const token = new URL(printed).searchParams.get('token')!;
      // The generated token is kept (0600) in the project's kiln home, for the next start.
      expect(readFileSync(join(cwd, '.kiln', 'webserver-token'), 'utf8').trim()).toBe(token);
      expect((statSync(join(cwd, '.kiln', 'webserver-token')).mode & 0o777).toString(8)).toBe('600');
      expect((await fetch(`${url}api/v1/health`)).status).toBe(401);
      expect(((await (await fetch(`${url}api/v1/health`, { headers: { authorization: `Bearer ${token}` } })).json()) as { database: string }).database).toBe('ok');
      // Opening the printed URL swaps the token for the session cookie, and takes it out of the address.
      const signIn = await fetch(printed, { redirect: 'manual' });
      expect(signIn.status).toBe(302);
      expect(signIn.headers.get('location')).toBe('/');
      const cookie = signIn.headers.get('set-cookie')!;
      expect(cookie).toMatch(/^kiln_session=[\w-]+; Path=\/; HttpOnly; SameSite=Strict$/);
      expect(cookie).not.toContain(token);
      const page = await fetch(url, { headers: { cookie: cookie.split(';')[0]! } });
      expect(page.headers.get('content-type')).toMatch(/text\/html/);
      expect(await page.text()).toMatch(/<script type="module" src="\/assets\/app.js"><\/script>/);
      const signedOut = await fetch(url);
      expect(signedOut.status).toBe(401);
      expect(await signedOut.text()).not.toMatch(/<script/);

      // A run triggered by another process (the CLI) reaches this server's event stream through the database's change feed.
      const events = await openSse(`${url}api/v1/events`, { authorization: `Bearer ${token}` });
      expect((await events.next()).event).toBe('hello');
      const triggered = await runKiln(['dags', 'trigger', 'web_demo', '--run-id', 'from-cli'], { cwd, env: { KILN_DATABASE_URL: env.KILN_DATABASE_URL, KILN_DAGS_FOLDER: WEB_FIXTURES } });
      expect(triggered.code, triggered.stderr).toBe(0);
      const [change] = await events.until((m) => m.event === 'change');
      expect(JSON.parse(change!.data)).toMatchObject({ kind: 'run', dagId: 'web_demo', runId: 'from-cli', state: 'queued' });
      events.close();
      // /metrics: the database's gauges (the queued run counted), behind the same auth as the API.
      expect((await fetch(`${url}metrics`)).status).toBe(401);
      const metrics = await fetch(`${url}metrics`, { headers: { authorization: `Bearer ${token}` } });
      expect(metrics.headers.get('content-type')).toMatch(/text\/plain/);
      expect(await metrics.text()).toMatch(/^kiln_dag_runs\{dag_id="web_demo",state="queued"\} 1$/m);
      expect((await fetch(`${url}assets/app.js`)).status).toBe(200);
      expect((await fetch(`${url}assets/../package.json`)).status).toBe(404);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited, out).toBe(0);
  });

  it('inside kiln scheduler, serves the scheduler\'s own metrics at /metrics too', async () => {
    const cwd = scratchProject('kiln-scheduler-web-');
    const env: Record<string, string | undefined> = { ...process.env, KILN_DATABASE_URL: `sqlite:${join(cwd, 'kiln.db')}`, KILN_DAGS_FOLDER: WEB_FIXTURES, KILN_SCHEDULER_INTERVAL: '100ms' };
    const triggered = await runKiln(['dags', 'trigger', 'web_demo', '--run-id', 'measured'], { cwd, env: { KILN_DATABASE_URL: env.KILN_DATABASE_URL, KILN_DAGS_FOLDER: WEB_FIXTURES } });
    expect(triggered.code, triggered.stderr).toBe(0);
    const child = spawn(process.execPath, [CLI, 'scheduler', '--executor', 'thread', '--webserver', '127.0.0.1:0', '--metrics', '127.0.0.1:0'], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c));
    child.stderr.on('data', (c: Buffer) => (out += c));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      const printed = await until(() => /kiln web UI: (http:\/\/127\.0\.0\.1:\d+\/\?token=\S+)/.exec(out)?.[1], 'the URL to be printed');
      const token = new URL(printed).searchParams.get('token')!;
      const scrape = async () => (await fetch(`${new URL(printed).origin}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text();
      // The engine's counters, which only the scheduler's registry has.
      const text = await until(async () => {
        const body = await scrape();
        return /^kiln_task_instance_starts_total\{dag_id="web_demo"\} [1-9]/m.test(body) ? body : null;
      }, 'the scheduler to count its starts', 30_000);
      expect(text).toMatch(/^kiln_scheduler_heartbeats_total \d+/m);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited, out).toBe(0);
  });

  it('reads --webserver addresses', () => {
    const config = { webserverHost: '127.0.0.1', webserverPort: 8080 };
    expect(webserverAddress(config, true)).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(webserverAddress(config, '9000')).toEqual({ host: '127.0.0.1', port: 9000 });
    expect(webserverAddress(config, '0.0.0.0:9001')).toEqual({ host: '0.0.0.0', port: 9001 });
    expect(webserverAddress(config, '[::1]:9002')).toEqual({ host: '::1', port: 9002 });
    expect(webserverAddress(config, 'localhost')).toEqual({ host: 'localhost', port: 8080 });
    expect(() => webserverAddress(config, 'host:99999')).toThrow(/no valid port/);
  });
});
