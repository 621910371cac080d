/**
 * Traces end to end: `kiln scheduler` with otlpEndpoint (KILN_OTLP_ENDPOINT) exports one
 * trace per run over OTLP/HTTP to a small local receiver: a root span for the run and one
 * child span per try, with the outcome, exit reason, signal and resources as attributes.
 * Without it, the scheduler loads nothing of OpenTelemetry (nor pino, with text logs).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO, runKiln, scratchProject } from '../helpers/cli.js';
import { startOtlpReceiver, type OtlpReceiver } from '../helpers/otlp.js';

const DAGS = join(REPO, 'test/fixtures/metrics');
const MODULE_LOG = pathToFileURL(join(REPO, 'test/fixtures/module-log/register.mjs')).href;

describe('kiln scheduler with otlpEndpoint', () => {
  let receiver: OtlpReceiver | null = null;
  afterEach(async () => {
    await receiver?.close();
    receiver = null;
  });

  it('exports a run as a trace: its root span and one child span per try', async () => {
    receiver = await startOtlpReceiver();
    const cwd = scratchProject('kiln-traces-');
    const env = { KILN_DAGS_FOLDER: DAGS, KILN_PARALLELISM: '4', KILN_SCHEDULER_INTERVAL: '100ms', KILN_OTLP_ENDPOINT: receiver.endpoint };
    const trigger = await runKiln(['dags', 'trigger', 'metered', '--run-id', 'traced'], { cwd, env });
    expect(trigger.code, trigger.stderr).toBe(0);
    const res = await runKiln(['scheduler', '--exit-when-idle', '--executor', 'process'], { cwd, env });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toContain(`exporting traces to ${receiver.endpoint}`);
    expect(receiver.contentTypes.every((t) => t.startsWith('application/json'))).toBe(true);

    const runs = receiver.spans.filter((s) => s.name === 'dag_run metered');
    expect(runs).toHaveLength(1);
    const run = runs[0]!;
    expect(run.parentSpanId).toBe('');
    expect(run.attributes).toMatchObject({ 'kiln.dag_id': 'metered', 'kiln.run_id': 'traced', 'kiln.run_type': 'manual', 'kiln.state': 'failed' });
    expect(run.status.code).toBe(2); // ERROR
    expect(run.resource['service.name']).toBe('kiln');

    const tries = receiver.spans.filter((s) => s.name.startsWith('try '));
    expect(tries.map((s) => s.name).sort()).toEqual(['try boom', 'try killed', 'try ok_a', 'try ok_b', 'try ok_c']);
    for (const t of tries) {
      expect(t.traceId).toBe(run.traceId);
      expect(t.parentSpanId).toBe(run.spanId);
      expect(t.attributes).toMatchObject({ 'kiln.dag_id': 'metered', 'kiln.run_id': 'traced', 'kiln.try_number': 1 });
      expect(t.events.map((e) => e.name)).toEqual(['running']);
      expect(typeof t.attributes['kiln.queued_ms']).toBe('number');
      expect(BigInt(t.endTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(t.startTimeUnixNano));
      expect(BigInt(t.startTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(run.startTimeUnixNano));
      expect(BigInt(t.endTimeUnixNano)).toBeLessThanOrEqual(BigInt(run.endTimeUnixNano));
    }
    const byTask = Object.fromEntries(tries.map((t) => [t.name.slice(4), t]));
    expect(byTask.ok_a!.attributes).toMatchObject({ 'kiln.outcome': 'success', 'kiln.isolation': 'thread' });
    expect(byTask.ok_a!.attributes['kiln.peak_rss_bytes']).toBeGreaterThan(0);
    expect(byTask.ok_a!.status.code ?? 0).toBe(0);
    expect(byTask.boom!.attributes).toMatchObject({ 'kiln.outcome': 'failed', 'kiln.exit_reason': 'exception' });
    expect(byTask.boom!.status).toMatchObject({ code: 2, message: 'boom on purpose' });
    expect(byTask.killed!.attributes).toMatchObject({ 'kiln.outcome': 'failed', 'kiln.exit_reason': 'signal', 'kiln.signal': 'SIGKILL', 'kiln.error_code': 'WORKER_EXITED', 'kiln.isolation': 'process' });
  });

  it('loads nothing of OpenTelemetry without it (nor prom-client without metrics, nor pino without JSON logs)', async () => {
    const loaded = async (env: Record<string, string>, args: string[] = []): Promise<string> => {
      const log = join(mkdtempSync(join(tmpdir(), 'kiln-modules-')), 'modules.log');
      const res = await runKiln(['scheduler', '--exit-when-idle', ...args], {
        cwd: scratchProject('kiln-traces-off-'),
        env: { KILN_DAGS_FOLDER: join(REPO, 'test/fixtures/scheduler/chain'), KILN_TEST_MODULE_LOG: log, NODE_OPTIONS: `--import ${MODULE_LOG}`, ...env },
      });
      expect(res.code, res.stderr).toBe(0);
      return readFileSync(log, 'utf8');
    };
    const off = await loaded({});
    expect(off).toMatch(/dist\/src\/app\/scheduler\.js/); // the log works
    expect(off).not.toMatch(/@opentelemetry/);
    expect(off).not.toMatch(/node_modules\/pino\/|^require:pino$/m);
    // Metrics alone: prom-client (which brings OpenTelemetry's API package), not the SDK.
    const metricsOnly = await loaded({ KILN_METRICS_PORT: '0' });
    expect(metricsOnly).toMatch(/prom-client/);
    expect(metricsOnly).not.toMatch(/sdk-trace|exporter-trace/);
    expect(off).not.toMatch(/prom-client/);
    receiver = await startOtlpReceiver();
    const on = await loaded({ KILN_OTLP_ENDPOINT: receiver.endpoint }, ['--log-format', 'json']);
    expect(on).toMatch(/@opentelemetry\/sdk-trace-base/);
    expect(on).toMatch(/^require:pino$/m);
  });
});
