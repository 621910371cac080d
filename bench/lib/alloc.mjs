/**
 * Bytes a function allocates on the V8 heap, two independent ways:
 *  - heapDelta: heap used after the call minus heap used right after a forced full GC, in a
 *    process whose young generation is large enough that no GC runs during the call (the
 *    case checks that with a `gc` PerformanceObserver and discards samples where one ran).
 *    Needs --expose-gc and a large --max-semi-space-size.
 *  - sampled: V8's sampling heap profiler (node:inspector HeapProfiler.startSampling) with
 *    objects collected by minor and major GCs kept in the profile, so garbage counts too.
 */
import { Session } from 'node:inspector/promises';
import { PerformanceObserver } from 'node:perf_hooks';
import { setImmediate as tick } from 'node:timers/promises';

let gcEntries = [];
const observer = new PerformanceObserver((list) => {
  gcEntries.push(...list.getEntries().map((e) => e.startTime));
});
observer.observe({ entryTypes: ['gc'] });

function fullGc() {
  if (typeof globalThis.gc !== 'function') throw new Error('run with --expose-gc');
  globalThis.gc();
  globalThis.gc();
}

/** { bytes, gcDuring } for one call of fn. */
export async function heapDelta(fn) {
  fullGc();
  await tick();
  gcEntries = [];
  const t0 = performance.now();
  const before = process.memoryUsage().heapUsed;
  await fn();
  const after = process.memoryUsage().heapUsed;
  const t1 = performance.now();
  await tick();
  const gcDuring = gcEntries.some((t) => t >= t0 && t <= t1);
  return { bytes: after - before, gcDuring, ms: t1 - t0 };
}

/** Bytes allocated per call, estimated by the sampling heap profiler over `calls` calls. */
export async function sampledAllocation(fn, calls, samplingInterval = 512) {
  const session = new Session();
  session.connect();
  try {
    await session.post('HeapProfiler.enable');
    await session.post('HeapProfiler.startSampling', { samplingInterval, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    for (let i = 0; i < calls; i++) await fn();
    const { profile } = await session.post('HeapProfiler.stopSampling');
    let total = 0;
    const stack = [profile.head];
    while (stack.length > 0) {
      const node = stack.pop();
      total += node.selfSize;
      stack.push(...node.children);
    }
    return total / calls;
  } finally {
    await session.post('HeapProfiler.disable').catch(() => {});
    session.disconnect();
  }
}
