/**
 * Peak resident memory of this process and all its descendants (worker threads count in
 * this process; pool children and spawned tasks in theirs), sampled from /proc while a
 * measurement runs. Off Linux it falls back to this process alone.
 */
import { readdirSync, readFileSync } from 'node:fs';

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
  const out = [];
  let tasks;
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    try {
      const list = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (list) for (const c of list.split(' ')) out.push(Number(c));
    } catch {}
  }
  return out;
}

export function treeRssBytes(root = process.pid) {
  if (process.platform !== 'linux') return process.memoryUsage.rss();
  let total = 0;
  const stack = [root];
  while (stack.length > 0) {
    const pid = stack.pop();
    total += rssBytes(pid);
    stack.push(...children(pid));
  }
  return total;
}

/** Samples every `intervalMs` until stop(); stop() returns the peak (bytes). */
export function startRssSampler(intervalMs = 25) {
  let peak = treeRssBytes();
  const timer = setInterval(() => {
    peak = Math.max(peak, treeRssBytes());
  }, intervalMs);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      peak = Math.max(peak, treeRssBytes());
      return peak;
    },
  };
}
