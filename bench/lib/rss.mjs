/**
 * Peak resident memory of a process and all its descendants (worker threads count in the
 * process; pool children and spawned tasks in theirs), sampled from /proc while a
 * measurement runs. The sampler runs in the case process, not in the measured one: reading
 * /proc costs CPU, and the measured process's main thread is what a benchmark saturates.
 * Children are read from each process's main thread (/proc/<pid>/task/<pid>/children):
 * kiln forks pool workers and spawns tasks from its main thread. Off Linux: 0 for others.
 */
import { readFileSync } from 'node:fs';

const PAGE_BYTES = 4096;

function rssBytes(pid) {
  try {
    // statm: size resident shared ... (pages)
    const statm = readFileSync(`/proc/${pid}/statm`, 'utf8');
    return Number(statm.split(' ')[1]) * PAGE_BYTES;
  } catch {
    return 0;
  }
}

function children(pid) {
  try {
    const list = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    return list ? list.split(' ').map(Number) : [];
  } catch {
    return [];
  }
}

export function treeRssBytes(root = process.pid) {
  if (process.platform !== 'linux') return root === process.pid ? process.memoryUsage.rss() : 0;
  let total = 0;
  const stack = [root];
  while (stack.length > 0) {
    const pid = stack.pop();
    total += rssBytes(pid);
    stack.push(...children(pid));
  }
  return total;
}

/** Samples `root`'s tree every `intervalMs` until stop(); stop() returns the peak (bytes). */
export function startRssSampler(root = process.pid, intervalMs = 50) {
  let peak = treeRssBytes(root);
  const timer = setInterval(() => {
    peak = Math.max(peak, treeRssBytes(root));
  }, intervalMs);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      peak = Math.max(peak, treeRssBytes(root));
      return peak;
    },
  };
}
