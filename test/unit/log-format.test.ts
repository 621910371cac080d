/**
 * The scheduler's log formats: text lines for people, one pino JSON object per line with
 * dag_id, run_id, task_id and try where they apply.
 */
import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { schedulerLog } from '../../src/app/log.js';

function written(format: 'text' | 'json', lines: (log: ReturnType<typeof schedulerLog>) => void): string {
  const file = join(mkdtempSync(join(tmpdir(), 'kiln-log-')), 'out.log');
  const fd = openSync(file, 'w');
  try {
    lines(schedulerLog(format, fd));
  } finally {
    closeSync(fd);
  }
  return readFileSync(file, 'utf8');
}

describe('scheduler log formats', () => {
  it('json: one object per line with level, ISO time, msg and the fields of the line', () => {
    const out = written('json', (log) => {
      log('info', 'scheduler started');
      log('warn', 'task t of run r (DAG d, try 2): no heartbeat', { dag_id: 'd', run_id: 'r', task_id: 't', try: 2 });
      log('error', 'run r of DAG d ended failed', { dag_id: 'd', run_id: 'r' });
    });
    const lines = out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatchObject({ level: 'info', msg: 'scheduler started', pid: process.pid });
    expect(lines[0]).not.toHaveProperty('dag_id');
    expect(new Date(lines[0]!.time as string).toISOString()).toBe(lines[0]!.time);
    expect(lines[1]).toMatchObject({ level: 'warn', dag_id: 'd', run_id: 'r', task_id: 't', try: 2 });
    expect(lines[2]).toMatchObject({ level: 'error', dag_id: 'd', run_id: 'r', msg: 'run r of DAG d ended failed' });
  });

  it('text: time, level and message, as before', () => {
    const out = written('text', (log) => log('warn', 'something', { dag_id: 'd' }));
    expect(out).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z warn {2}something\n$/);
  });
});
