/**
 * RunTracer with OpenTelemetry's in-memory exporter: a run is one trace, each try a child
 * span of the run's span; a run first seen through a try (taken over) still gets its span;
 * close() ends what is open and flushes; tracesUrl() builds the OTLP traces URL.
 */
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import type { TaskWork } from '../../src/executor/types.js';
import { RunTracer, tracesUrl } from '../../src/metrics/traces.js';

function work(runId: string, taskId: string, tryNumber = 1): TaskWork {
  return {
    key: `d/${runId}/${taskId}/${tryNumber}`, dagId: 'd', runId, taskId, tryNumber, maxTries: 2, dagFile: '/x.ts', dagVersion: 'v',
    params: {}, runType: 'scheduled', logicalDate: 0, dataIntervalStart: 0, dataIntervalEnd: 0, prevDataIntervalStartSuccess: null,
    prevDataIntervalEndSuccess: null, isolation: 'thread', timeoutMs: null, heartbeatTimeoutMs: null, env: [], logFile: null,
  };
}

describe('RunTracer', () => {
  it('makes a run one trace and each try a child span; close() ends what is still open', async () => {
    // (The SDK's InMemorySpanExporter forgets its spans at shutdown, which close() does.)
    const exported: ReadableSpan[] = [];
    const exporter: SpanExporter = {
      export: (spans, done) => {
        exported.push(...spans);
        done({ code: 0 });
      },
      shutdown: async () => {},
    };
    const tracer = new RunTracer({ endpoint: 'http://unused', exporter });
    const t0 = Date.now();
    tracer.runStarted({ dagId: 'd', runId: 'r1', state: 'running', runType: 'scheduled', dataIntervalEnd: t0, startedAt: t0, endedAt: null });
    tracer.trySubmitted(work('r1', 'a'));
    tracer.executorEvent({ type: 'started', key: 'd/r1/a/1', isolation: 'thread', pid: null, threadId: 3, at: t0 + 1 });
    tracer.executorEvent({ type: 'finished', key: 'd/r1/a/1', outcome: 'failed', noRetry: false, error: { name: 'KilnError', code: 'TASK_TIMEOUT', message: 'timed out after 5 ms' }, exitCode: null, signal: null, usage: { peakRssBytes: 1024, cpuMs: 3 }, durationMs: 5, at: t0 + 6 });
    tracer.trySubmitted(work('r1', 'a', 2));
    tracer.executorEvent({ type: 'finished', key: 'd/r1/a/2', outcome: 'success', noRetry: false, error: null, exitCode: null, signal: null, usage: { peakRssBytes: null, cpuMs: null }, durationMs: 1, at: t0 + 9 });
    tracer.runFinished({ dagId: 'd', runId: 'r1', state: 'success', runType: 'scheduled', dataIntervalEnd: t0, startedAt: t0, endedAt: t0 + 10 });
    // A run taken over: first seen through its try; still running at close().
    tracer.trySubmitted(work('r2', 'b'));
    await tracer.close();

    const spans = exported;
    const run1 = spans.find((s) => s.name === 'dag_run d' && s.attributes['kiln.run_id'] === 'r1')!;
    const run2 = spans.find((s) => s.name === 'dag_run d' && s.attributes['kiln.run_id'] === 'r2')!;
    expect(run1.parentSpanContext).toBeUndefined();
    expect(run1.attributes['kiln.state']).toBe('success');
    expect(run2.attributes['kiln.released']).toBe(true);
    const tries = spans.filter((s) => s.name === 'try a');
    expect(tries).toHaveLength(2);
    for (const t of tries) {
      expect(t.spanContext().traceId).toBe(run1.spanContext().traceId);
      expect(t.parentSpanContext?.spanId).toBe(run1.spanContext().spanId);
    }
    const [first, second] = tries.sort((x, y) => Number(x.attributes['kiln.try_number']) - Number(y.attributes['kiln.try_number']));
    expect(first!.attributes).toMatchObject({ 'kiln.outcome': 'failed', 'kiln.exit_reason': 'timeout', 'kiln.error_code': 'TASK_TIMEOUT', 'kiln.peak_rss_bytes': 1024, 'kiln.cpu_ms': 3 });
    expect(first!.status).toEqual({ code: 2, message: 'timed out after 5 ms' });
    expect(first!.events.map((e) => e.name)).toEqual(['running']);
    expect(second!.attributes['kiln.outcome']).toBe('success');
    expect(second!.events).toEqual([]); // never reported started
    const b = spans.find((s) => s.name === 'try b')!;
    expect(b.parentSpanContext?.spanId).toBe(run2.spanContext().spanId);
    expect(b.attributes['kiln.abandoned']).toBe(true);
  });

  it('builds the OTLP traces URL from a base URL or takes a full one', () => {
    expect(tracesUrl('http://collector:4318')).toBe('http://collector:4318/v1/traces');
    expect(tracesUrl('http://collector:4318/')).toBe('http://collector:4318/v1/traces');
    expect(tracesUrl('https://x.example/otlp/v1/traces')).toBe('https://x.example/otlp/v1/traces');
  });
});
