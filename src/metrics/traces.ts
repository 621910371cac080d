/**
 * Traces over OTLP/HTTP: each DAG run is a trace (its root span lasts from the run's start to
 * its end) and each try a child span, from its hand-over to the executor (queued) to its end,
 * with the outcome, exit code, signal, error code and resource figures as attributes.
 *
 * This file loads OpenTelemetry's SDK: the app layer imports it only when otlpEndpoint is
 * set (a dynamic import), so a kiln without traces never loads any of it. Spans are batched
 * and exported in the background; close() ends what is still open and flushes.
 */
import { context, SpanStatusCode, trace, type Span, type Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { ExecutorEvent, TaskWork } from '../executor/types.js';
import { tryExitReason } from './exit-reason.js';
import type { KilnObserver, RunChange } from './observer.js';

export interface RunTracerOptions {
  /** OTLP/HTTP base URL (`http://collector:4318`) or the full traces URL (`.../v1/traces`). */
  endpoint: string;
  serviceName?: string;
  /** Another exporter (tests). */
  exporter?: SpanExporter;
  /** Batch export delay; default 1000 ms. */
  exportDelayMs?: number;
}

interface OpenTry {
  span: Span;
  runKey: string;
  /** performance.now() at the hand-over. */
  submittedAt: number;
}

export function tracesUrl(endpoint: string): string {
  const base = endpoint.replace(/\/+$/, '');
  return base.endsWith('/v1/traces') ? base : `${base}/v1/traces`;
}

export class RunTracer implements KilnObserver {
  private readonly provider: BasicTracerProvider;
  private readonly tracer: Tracer;
  private readonly runs = new Map<string, Span>();
  private readonly tries = new Map<string, OpenTry>();

  constructor(options: RunTracerOptions) {
    const exporter = options.exporter ?? new OTLPTraceExporter({ url: tracesUrl(options.endpoint) });
    this.provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': options.serviceName ?? 'kiln' }),
      spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: options.exportDelayMs ?? 1000 })],
    });
    this.tracer = this.provider.getTracer('kiln');
  }

  runStarted(run: RunChange): void {
    this.runSpan(run.dagId, run.runId, run.startedAt ?? Date.now(), run.runType);
  }

  trySubmitted(work: TaskWork): void {
    const parent = this.runSpan(work.dagId, work.runId, Date.now(), work.runType);
    const span = this.tracer.startSpan(`try ${work.taskId}`, {
      attributes: {
        'kiln.dag_id': work.dagId,
        'kiln.run_id': work.runId,
        'kiln.task_id': work.taskId,
        'kiln.try_number': work.tryNumber,
        'kiln.max_tries': work.maxTries,
        'kiln.isolation': work.isolation,
      },
    }, trace.setSpan(context.active(), parent));
    this.tries.set(work.key, { span, runKey: runKey(work.dagId, work.runId), submittedAt: performance.now() });
  }

  tryRefused(key: string): void {
    const t = this.tries.get(key);
    if (t === undefined) return;
    this.tries.delete(key);
    t.span.setAttribute('kiln.refused', true);
    t.span.end();
  }

  executorEvent(event: ExecutorEvent): void {
    if (event.type === 'started') {
      const t = this.tries.get(event.key);
      if (t === undefined) return;
      t.span.addEvent('running', { 'kiln.pid': event.pid ?? -1 }, event.at);
      t.span.setAttributes({ 'kiln.isolation': event.isolation, 'kiln.queued_ms': performance.now() - t.submittedAt });
      if (event.pid !== null) t.span.setAttribute('kiln.pid', event.pid);
    } else if (event.type === 'finished') {
      const t = this.tries.get(event.key);
      if (t === undefined) return;
      this.tries.delete(event.key);
      const { span } = t;
      span.setAttributes({ 'kiln.outcome': event.outcome, 'kiln.duration_ms': event.durationMs });
      if (event.exitCode !== null) span.setAttribute('kiln.exit_code', event.exitCode);
      if (event.signal !== null) span.setAttribute('kiln.signal', event.signal);
      if (event.usage.peakRssBytes !== null) span.setAttribute('kiln.peak_rss_bytes', event.usage.peakRssBytes);
      if (event.usage.cpuMs !== null) span.setAttribute('kiln.cpu_ms', event.usage.cpuMs);
      const reason = tryExitReason(event);
      if (reason !== null) span.setAttribute('kiln.exit_reason', reason);
      if (event.error !== null) {
        if (event.error.code !== undefined) span.setAttribute('kiln.error_code', event.error.code);
        span.setStatus({ code: SpanStatusCode.ERROR, message: event.error.message });
      } else if (event.outcome === 'failed') {
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
      span.end(event.at);
    }
  }

  runFinished(run: RunChange): void {
    const key = runKey(run.dagId, run.runId);
    const span = this.runs.get(key);
    if (span === undefined) return;
    this.runs.delete(key);
    span.setAttribute('kiln.state', run.state);
    if (run.state === 'failed') span.setStatus({ code: SpanStatusCode.ERROR });
    span.end(run.endedAt ?? Date.now());
  }

  /** Ends what is still open (runs and tries this process stops driving) and exports everything. */
  async close(): Promise<void> {
    for (const t of this.tries.values()) {
      t.span.setAttribute('kiln.abandoned', true);
      t.span.end();
    }
    this.tries.clear();
    for (const span of this.runs.values()) {
      span.setAttribute('kiln.released', true);
      span.end();
    }
    this.runs.clear();
    await this.provider.shutdown();
  }

  /** The root span of a run; a run first seen through one of its tries (taken over) gets one now. */
  private runSpan(dagId: string, runId: string, startTime: number, runType: string): Span {
    const key = runKey(dagId, runId);
    let span = this.runs.get(key);
    if (span === undefined) {
      span = this.tracer.startSpan(`dag_run ${dagId}`, {
        root: true,
        startTime,
        attributes: { 'kiln.dag_id': dagId, 'kiln.run_id': runId, 'kiln.run_type': runType },
      });
      this.runs.set(key, span);
    }
    return span;
  }
}

function runKey(dagId: string, runId: string): string {
  return `${dagId}\u0000${runId}`;
}
