/**
 * `kiln scheduler --log-format json`: every line on stderr is one JSON object, and the lines
 * about a run carry its dag_id and run_id as fields. A bad format is refused with exit 2.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO, runKiln, scratchProject } from '../helpers/cli.js';

const DAGS = join(REPO, 'test/fixtures/metrics');

describe('kiln scheduler --log-format', () => {
  it('json: one object per line; lines about a run carry dag_id and run_id', async () => {
    const cwd = scratchProject('kiln-logjson-');
    const env = { KILN_DAGS_FOLDER: DAGS, KILN_PARALLELISM: '4', KILN_SCHEDULER_INTERVAL: '100ms' };
    const trigger = await runKiln(['dags', 'trigger', 'metered', '--run-id', 'logged'], { cwd, env });
    expect(trigger.code, trigger.stderr).toBe(0);
    const res = await runKiln(['scheduler', '--exit-when-idle', '--log-format', 'json', '--executor', 'process'], { cwd, env });
    expect(res.code, res.stderr).toBe(0);
    const lines = res.stderr.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const line of lines) expect(Object.keys(line)).toEqual(expect.arrayContaining(['level', 'time', 'msg', 'pid', 'hostname']));
    expect(lines.find((l) => l.msg === 'started run logged of DAG metered')).toMatchObject({ level: 'info', dag_id: 'metered', run_id: 'logged' });
    expect(lines.find((l) => l.msg === 'run logged of DAG metered ended failed')).toMatchObject({ level: 'info', dag_id: 'metered', run_id: 'logged' });
    expect(lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('import error:'))).toMatchObject({ level: 'warn' });
  });

  it('refuses an unknown format (flag or KILN_LOG_FORMAT) with exit 2', async () => {
    const cwd = scratchProject('kiln-logjson-');
    const flag = await runKiln(['scheduler', '--log-format', 'xml'], { cwd, env: { KILN_DAGS_FOLDER: DAGS } });
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/--log-format must be one of text, json, got "xml"/);
    const env = await runKiln(['scheduler'], { cwd, env: { KILN_DAGS_FOLDER: DAGS, KILN_LOG_FORMAT: 'yaml' } });
    expect(env.code).toBe(2);
    expect(env.stderr).toMatch(/KILN_LOG_FORMAT must be one of text, json, got "yaml"/);
  });
});
