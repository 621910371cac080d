import { hostname } from 'node:os';
import type { Command } from 'commander';
import { metricsAddress, serveMetrics, workerMetrics } from '../../app/metrics.js';
import { ISOLATIONS, type Isolation } from '../../dag/types.js';
import { parseDurationMs } from '../../dag/duration.js';
import { UsageError } from '../../errors.js';
import { configFrom, type GlobalOptions } from '../config-flags.js';
import { EXIT, formatTable, printJson } from '../output.js';

interface WorkerFlags {
  queues?: string;
  slots?: string;
  isolation?: string;
  name?: string;
  drain?: string;
  metrics?: string | boolean;
  logFormat?: string;
}

const QUEUE_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$/;

/** `kiln worker`: a worker host for the bullmq executor; `kiln workers list`: the live ones. */
export function registerWorkerCommands(program: Command, run: (action: () => Promise<number>) => Promise<void>): void {
  program
    .command('worker')
    .description('run tasks of the bullmq executor on this host: consume queues from Redis (redisUrl / KILN_REDIS_URL), run each try in kiln\'s supervisor; never opens the database')
    .option('--queues <names>', 'comma-separated queues to consume (default: default)')
    .option('--slots <n>', 'tries running at once on this host (default: parallelism)')
    .option('--isolation <isolation>', 'thread | process | spawn: the pool pre-warmed, for tasks that name none (default: defaultIsolation)')
    .option('--name <name>', 'this host\'s name in `kiln workers list` and in failure reasons (default: the hostname)')
    .option('--drain <duration>', 'at SIGTERM/SIGINT, how long running tries may finish before they are cancelled (default: drainMs); a second signal exits at once')
    .option('--log-format <format>', 'text | json: how the worker writes its log lines on stderr (config logFormat / KILN_LOG_FORMAT; default text)')
    .option('--metrics [address]', 'serve Prometheus metrics of the tries this host runs at http://<address>/metrics; address [host:]port (config metricsHost/metricsPort / KILN_METRICS_HOST, KILN_METRICS_PORT; default 127.0.0.1:9464)')
    .action((opts: WorkerFlags, cmd: Command) =>
      run(async () => {
        const config = await configFrom(cmd.optsWithGlobals<GlobalOptions>(), { logFormat: opts.logFormat });
        const queues = (opts.queues ?? 'default').split(',').map((q) => q.trim()).filter((q) => q.length > 0);
        if (queues.length === 0 || !queues.every((q) => QUEUE_RE.test(q))) throw new UsageError(`--queues must be comma-separated names of letters, digits, '_', '.' or '-', got '${opts.queues}'`);
        const slots = opts.slots === undefined ? config.parallelism : Number(opts.slots);
        if (!(Number.isInteger(slots) && slots >= 1)) throw new UsageError(`--slots must be an integer >= 1, got '${opts.slots}'`);
        if (opts.isolation !== undefined && !(ISOLATIONS as readonly string[]).includes(opts.isolation)) throw new UsageError(`--isolation must be one of ${ISOLATIONS.join(', ')}, got '${opts.isolation}'`);
        const drainMs = opts.drain === undefined ? config.drainMs : parseDurationMs(/^\d+$/.test(opts.drain) ? Number(opts.drain) : opts.drain);
        if (drainMs === undefined || drainMs < 0) throw new UsageError(`--drain must be milliseconds or a duration like '30s', got '${opts.drain}'`);
        const address = metricsAddress(config, opts.metrics);
        const log = await workerLog(config.logFormat, opts.name ?? hostname());
        // Loaded per command: other commands never pay for the remote parts (nor for prom-client without metrics).
        const { WorkerHost } = await import('../../remote/worker-host.js');
        const { redactUrl } = await import('../../remote/redis.js');
        const observed = address === null ? null : await workerMetrics(config);
        const metricsServer = observed === null || address === null ? null : await serveMetrics(observed.metrics, address);
        if (metricsServer !== null) log(`serving metrics at ${metricsServer.url}`);
        const host = new WorkerHost({
          redisUrl: config.redisUrl, queues, slots, name: opts.name ?? hostname(),
          isolation: (opts.isolation as Isolation | undefined) ?? config.defaultIsolation,
          logsFolder: config.logsFolder, dagsFolder: config.dagsFolder,
          zombieTimeoutMs: config.zombieTimeoutMs, heartbeatIntervalMs: config.heartbeatIntervalMs,
          local: {
            maxTasksPerWorker: config.maxTasksPerWorker, maxWorkerMemoryBytes: config.maxWorkerMemoryBytes,
            maxTaskMemoryBytes: config.maxTaskMemoryBytes, killGraceMs: config.killGraceMs, extra: { workerHeapLimitMb: config.workerHeapLimitMb },
          },
          log,
          ...(observed === null ? {} : { observe: observed.observe }),
        });
        const stopped = new Promise<void>((resolve) => {
          let signals = 0;
          const onSignal = (signal: NodeJS.Signals): void => {
            if (signals++ > 0) {
              log(`${signal} again: exiting now`);
              process.exit(EXIT.failed);
            }
            log(`${signal}: no new tries; running ones may finish for ${drainMs / 1000}s, then are cancelled`);
            void host.stop(drainMs).then(resolve, (err: unknown) => {
              log(`stopping failed: ${err instanceof Error ? err.message : String(err)}`);
              resolve();
            });
          };
          process.on('SIGTERM', onSignal);
          process.on('SIGINT', onSignal);
        });
        await host.start();
        log(`${host.id} consuming ${queues.join(', ')} with ${slots} slots (${(opts.isolation as string | undefined) ?? config.defaultIsolation} pre-warmed) on ${redactUrl(config.redisUrl)}`);
        await stopped;
        await metricsServer?.close();
        log('stopped');
        // Whatever a task left behind must not keep a stopped worker alive.
        setTimeout(() => process.exit(EXIT.ok), 3000).unref();
        return EXIT.ok;
      }),
    );

  program
    .command('workers')
    .description('worker hosts (kiln worker)')
    .command('list')
    .description('the worker hosts that beat in Redis lately: queues, slots, running tries, last heartbeat')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }, cmd: Command) =>
      run(async () => {
        const config = await configFrom(cmd.optsWithGlobals<GlobalOptions>());
        const { listWorkerHosts } = await import('../../remote/hosts.js');
        const hosts = await listWorkerHosts(config.redisUrl);
        if (opts.json) printJson({ workers: hosts.map(({ seq: _seq, ...h }) => ({ ...h, startedAt: new Date(h.startedAt).toISOString(), lastHeartbeatAt: new Date(h.at).toISOString() })) });
        else if (hosts.length === 0) process.stdout.write('no live worker hosts\n');
        else {
          const now = Date.now();
          process.stdout.write(formatTable(['HOST', 'NAME', 'QUEUES', 'SLOTS', 'RUNNING', 'HEARTBEAT'], hosts.map((h) => [h.id, `${h.name} (${h.hostname}:${h.pid})`, h.queues.join(','), h.slots, h.running, `${((now - h.at) / 1000).toFixed(1)}s ago`])));
        }
        return EXIT.ok;
      }),
    );
}


/**
 * The worker's lines on stderr: `kiln worker: <message>` as text, or with --log-format json one
 * pino object per line (`level`, `time`, `msg`, `pid`, `hostname`, `worker`: this host's name).
 */
async function workerLog(format: string, worker: string): Promise<(message: string) => void> {
  if (format !== 'json') return (message) => void process.stderr.write(`kiln worker: ${message}\n`);
  const { schedulerLog } = await import('../../app/log.js');
  const write = schedulerLog('json');
  return (message) => write('info', message, { worker });
}
