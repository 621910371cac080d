/**
 * Default memory limits. A worker thread without resourceLimits shares the process-wide heap
 * limit, and V8 cannot stop just that thread when it is reached: the whole kiln process
 * aborts. So every worker gets a heap limit and every try a memory limit by default, sized
 * so that `parallelism` tries at their limit still fit in the machine's memory.
 */
import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';

const MiB = 1024 * 1024;
/** kiln's default maxWorkerMemoryBytes (recycle a worker past 1 GiB). */
export const DEFAULT_MAX_WORKER_MEMORY_BYTES = 1024 * MiB;
/** Share of the machine's memory that running tries may take together. */
const MACHINE_SHARE = 0.8;
/** No default below this: a Node isolate needs some room to do anything at all. */
const MIN_TASK_MEMORY_BYTES = 64 * MiB;
/**
 * V8's heap limit is set under the try's limit, so a heap hog meets V8's clearer error
 * first: 90% of it, and at least this much below it for what a Node process holds besides
 * its old generation (code, young generation, the runtime itself).
 */
const HEAP_SHARE = 0.9;
const NON_HEAP_BYTES = 64 * MiB;

export interface MemoryInputs {
  totalMemoryBytes: number;
  parallelism: number;
  maxWorkerMemoryBytes: number;
}

/** min(2 x maxWorkerMemoryBytes, 80% of the machine / parallelism), at least 64 MiB. */
export function defaultTaskMemoryBytes({ totalMemoryBytes, parallelism, maxWorkerMemoryBytes }: MemoryInputs): number {
  const perSlot = Math.floor((totalMemoryBytes * MACHINE_SHARE) / Math.max(1, parallelism));
  return Math.max(MIN_TASK_MEMORY_BYTES, Math.min(2 * maxWorkerMemoryBytes, perSlot));
}

/** The V8 old-generation limit (MB) that goes with a try memory limit. */
export function heapLimitMbFor(taskMemoryBytes: number): number {
  return Math.max(32, Math.floor(Math.min(taskMemoryBytes * HEAP_SHARE, taskMemoryBytes - NON_HEAP_BYTES) / MiB));
}

/** The memory this machine or container gives kiln: the cgroup limit if there is a lower one. */
let cachedMachineBytes: number | null = null;
export function machineMemoryBytes(): number {
  if (cachedMachineBytes !== null) return cachedMachineBytes;
  let limit = totalmem();
  for (const file of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) {
    try {
      const value = Number(readFileSync(file, 'utf8').trim());
      if (Number.isFinite(value) && value > 0 && value < limit) limit = value;
      break;
    } catch {
      // not this cgroup version
    }
  }
  cachedMachineBytes = limit;
  return limit;
}
