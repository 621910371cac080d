/**
 * The scheduler's log lines on stderr, in one of two formats (config logFormat, `--log-format`):
 *
 *   text  `<ISO time> <level> <message>`: for a person at a terminal (the default)
 *   json  one object per line, written by pino: `level`, `time` (ISO), `msg`, `pid`,
 *         `hostname`, and `dag_id`, `run_id`, `task_id`, `try` where the line is about them:
 *         for log collectors (Loki, Elasticsearch, CloudWatch)
 *
 * pino is loaded only for the JSON format. Lines are written synchronously: a scheduler that
 * exits right after a line must not lose it.
 */
import { writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { LogFormat } from '../config/schema.js';
import type { LogFields, LogLevel } from '../scheduler/scheduler.js';

export type SchedulerLog = (level: LogLevel, message: string, fields?: LogFields) => void;

export function schedulerLog(format: LogFormat, fd = 2): SchedulerLog {
  return format === 'json' ? jsonLog(fd) : textLog(fd);
}

function textLog(fd: number): SchedulerLog {
  const write = fd === 2 ? (line: string) => process.stderr.write(line) : (line: string) => writeSync(fd, line);
  return (level, message) => {
    write(`${new Date().toISOString()} ${level.padEnd(5)} ${message}\n`);
  };
}

function jsonLog(fd: number): SchedulerLog {
  // Synchronous require (pino is CommonJS): the logger exists before the first line.
  const pino = createRequire(import.meta.url)('pino') as typeof import('pino');
  const logger = pino.pino(
    {
      level: 'info',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ fd, sync: true }),
  );
  return (level, message, fields) => {
    if (fields === undefined) logger[level](message);
    else logger[level](fields, message);
  };
}
