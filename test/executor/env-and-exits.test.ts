import { describe, expect, it } from 'vitest';
import { baseChildEnv, grantedEnv, isProtectedName } from '../../dist/src/executor/env.js';
import { explainExit } from '../../dist/src/executor/exit-reason.js';

describe('task environment', () => {
  const env = {
    PATH: '/usr/bin',
    HOME: '/home/k',
    KILN_DATABASE_URL: 'postgres://u:p@h/db',
    KILN_EXECUTOR: 'process',
    KILN_TS_CACHE_DIR: '/tmp/cache',
    AWS_SECRET_ACCESS_KEY: 's',
    GITHUB_TOKEN: 't',
    PGPASSWORD: 'p',
    database_url: 'x',
  };

  it('strips KILN_* and credential-looking variables, keeps the rest', () => {
    expect(baseChildEnv(env)).toEqual({ PATH: '/usr/bin', HOME: '/home/k', KILN_TS_CACHE_DIR: '/tmp/cache' });
    expect(isProtectedName('MY_API_TOKEN')).toBe(true);
    expect(isProtectedName('TOKENIZER_MODEL')).toBe(true); // a false positive costs a grant, a miss leaks a secret
    expect(isProtectedName('NODE_ENV')).toBe(false);
  });

  it('grants only the protected variables a task names and kiln has', () => {
    expect(grantedEnv([], env)).toBeUndefined();
    expect(grantedEnv(['GITHUB_TOKEN', 'PATH', 'MISSING_SECRET'], env)).toEqual({ GITHUB_TOKEN: 't' });
  });
});

describe('explainExit', () => {
  const hints = { heapLimitMb: 256, lastRssBytes: null, maxWorkerMemoryBytes: null };

  it('explains exit codes, signals and out-of-memory deaths', () => {
    expect(explainExit('process', { exitCode: 0, signal: null }, hints)).toMatch(/exited with code 0 .*process\.exit\(\)/);
    expect(explainExit('process', { exitCode: null, signal: 'SIGSEGV' }, hints)).toMatch(/SIGSEGV: a native crash/);
    expect(explainExit('spawn', { exitCode: null, signal: 'SIGABRT', stderrTail: 'FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory' }, hints))
      .toMatch(/JavaScript heap out of memory \(heap limit 256 MB\)/);
    const oom = Object.assign(new Error('worker ran out of memory'), { code: 'ERR_WORKER_OUT_OF_MEMORY' });
    expect(explainExit('thread', { exitCode: 1, signal: null, cause: oom }, hints)).toMatch(/^the worker thread ran out of memory/);
  });

  it('calls a SIGKILL with a large last RSS likely out of memory', () => {
    const big = explainExit('process', { exitCode: null, signal: 'SIGKILL' }, { ...hints, lastRssBytes: 900e6, maxWorkerMemoryBytes: 512e6 });
    expect(big).toMatch(/likely out of memory/);
    const small = explainExit('process', { exitCode: null, signal: 'SIGKILL' }, { ...hints, lastRssBytes: 50e6 });
    expect(small).not.toMatch(/likely out of memory/);
    expect(small).toMatch(/SIGKILL, not sent by kiln/);
  });
});
