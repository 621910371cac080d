import type { Command } from 'commander';
import { DEFAULT_DRAIN_MS, DEFAULT_TAKEOVER_AFTER_MS } from '../../config/load.js';
import { metricsAddress } from '../../app/metrics.js';
import { parseDurationMs } from '../../dag/duration.js';
import { UsageError } from '../../errors.js';
import { configFrom, type GlobalOptions } from '../config-flags.js';
import { openWebServer, webserverAddress } from './webserver.js';

interface SchedulerFlags {
  executor?: string;
  exitWhenIdle?: boolean;
  drain?: string;
  takeoverAfter?: string;
  webserver?: string | true;
  metrics?: string | boolean;
  logFormat?: string;
}

export function registerSchedulerCommand(program: Command, run: (action: () => Promise<number>) => Promise<void>): void {
  program
    .command('scheduler')
    .description('run the scheduler: parse the DAG folder, create scheduled runs, run triggered ones, recover what a dead scheduler left')
    .option('--executor <name>', 'thread | process | spawn | local | bullmq, or a module path exporting an executor factory')
    .option('--exit-when-idle', 'exit 0 once no queued or running run is left and no scheduled run is due')
    .option('--drain <duration>', `at shutdown, how long running tasks may finish before they are stopped (config drainMs / KILN_DRAIN; default ${DEFAULT_DRAIN_MS / 1000}s)`)
    .option('--takeover-after <duration>', `a scheduler silent this long is dead and its runs are taken over (config takeoverAfterMs / KILN_TAKEOVER_AFTER; default ${DEFAULT_TAKEOVER_AFTER_MS / 1000}s)`)
    .option('--metrics [address]', 'serve Prometheus metrics at http://<address>/metrics; address [host:]port (config metricsHost/metricsPort / KILN_METRICS_HOST, KILN_METRICS_PORT; default 127.0.0.1:9464)')
    .option('--log-format <format>', 'text | json: how the scheduler writes its log lines on stderr (config logFormat / KILN_LOG_FORMAT; default text)')
    .option('--webserver [address]', 'also serve the web UI and HTTP API; address [host:]port (config webserverHost/webserverPort; default 127.0.0.1:8080)')
    .action((opts: SchedulerFlags, cmd: Command) =>
      run(async () => {
        const config = await configFrom(cmd.optsWithGlobals<GlobalOptions>(), { executor: opts.executor, logFormat: opts.logFormat });
        // The service (engine, executor, parser) loads when the command runs, not for every kiln command.
        const { SchedulerService } = await import('../../app/scheduler.js');
        const service = new SchedulerService(config, {
          exitWhenIdle: opts.exitWhenIdle,
          drainMs: duration('--drain', opts.drain, true) ?? config.drainMs,
          takeoverAfterMs: duration('--takeover-after', opts.takeoverAfter, false) ?? config.takeoverAfterMs,
          metrics: opts.metrics === undefined ? undefined : metricsAddress(config, opts.metrics),
          // A database that stopped answering must not keep a failed scheduler alive.
          onFatal: () => setTimeout(() => process.exit(1), 30_000).unref(),
        });
        // First SIGTERM/SIGINT: clean shutdown with drain. Second: skip the drain.
        let signals = 0;
        const onSignal = (): void => service.stop(signals++ > 0);
        process.on('SIGTERM', onSignal);
        process.on('SIGINT', onSignal);
        // The web server opens its own connection to the database and only reads the store's change feed.
        // Its /metrics serves the scheduler's own registry (404 while metrics are off).
        const web = opts.webserver === undefined ? null : await openWebServer(config, webserverAddress(config, opts.webserver), () => service.scrapeMetrics());
        try {
          const code = await service.run();
          // Whatever a task or library left behind must not keep a stopped scheduler alive.
          setTimeout(() => process.exit(code), 3000).unref();
          return code;
        } finally {
          await web?.close();
          process.off('SIGTERM', onSignal);
          process.off('SIGINT', onSignal);
        }
      }),
    );
}

function duration(flag: string, raw: string | undefined, zeroOk: boolean): number | undefined {
  if (raw === undefined) return undefined;
  const ms = parseDurationMs(/^\d+$/.test(raw) ? Number(raw) : raw);
  if (ms === undefined || ms < 0 || (!zeroOk && ms === 0)) throw new UsageError(`${flag} must be milliseconds or a duration like '30s', got '${raw}'`);
  return ms;
}
