import { describe, expect, it } from 'vitest';
import { dag } from '../../src/dag/authoring.js';
import { serializeDag } from '../../src/dag/serialize.js';
import { noRetryReason } from '../../workers/retry-policy.js';

class HttpError extends Error {}
class NotFound extends HttpError {}

describe('retry policy', () => {
  const warnings: string[] = [];
  const warn = (m: string) => warnings.push(m);

  it('matches noRetryOn against the error name and its whole class chain', () => {
    expect(noRetryReason({ noRetryOn: ['HttpError'], retryOn: null }, new NotFound('gone'), warn)).toBe('noRetryOn lists HttpError');
    expect(noRetryReason({ noRetryOn: ['NotFound'], retryOn: null }, new NotFound('gone'), warn)).toBe('noRetryOn lists NotFound');
    expect(noRetryReason({ noRetryOn: ['RangeError'], retryOn: null }, new NotFound('gone'), warn)).toBeNull();
    expect(noRetryReason({ noRetryOn: ['Error'], retryOn: null }, 'a thrown string', warn)).toBeNull();
  });

  it('asks retryOn, and retries as usual when the check itself throws', () => {
    expect(noRetryReason({ noRetryOn: [], retryOn: () => false }, new Error('x'), warn)).toBe('retryOn returned false');
    expect(noRetryReason({ noRetryOn: [], retryOn: () => true }, new Error('x'), warn)).toBeNull();
    expect(noRetryReason({ noRetryOn: [], retryOn: () => { throw new Error('oops'); } }, new Error('x'), warn)).toBeNull();
    expect(warnings.at(-1)).toMatch(/retryOn threw \(oops\)/);
  });

  it('validates the options and keeps retryOn out of the serialized DAG', () => {
    expect(() => dag({ id: 'p' }, (d) => d.task('t', () => 1, { noRetryOn: 'TypeError' as never }))).toThrow(/task 't': option 'noRetryOn' must be an array of error class names/);
    expect(() => dag({ id: 'p' }, (d) => d.task('t', () => 1, { retryOn: true as never }))).toThrow(/task 't': option 'retryOn' must be a function/);
    expect(() => dag({ id: 'p', defaults: { retryOn: 1 as never } }, () => {})).toThrow(/option 'defaults.retryOn' must be a function/);
    const d = dag({ id: 'p', defaults: { retryOn: () => true } }, (b) => b.task('t', () => 1, { noRetryOn: ['TypeError'] }));
    expect(typeof d.tasks.get('t')?.retryOn).toBe('function');
    const task = serializeDag(d).tasks[0]!;
    expect(task.noRetryOn).toEqual(['TypeError']);
    expect('retryOn' in task).toBe(false);
  });
});
