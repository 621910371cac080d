/**
 * Finding and signalling a process's descendants. Used by the supervisor to kill a task's
 * whole process tree (a pre-forked worker is in kiln's own process group, so a group kill
 * is not possible) and by runners to take their children down when kiln goes away.
 * Node builtins only: runners import this.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** Every live descendant of `rootPid` (children, grandchildren, ...), parents before children. */
export function descendantsOf(rootPid: number): number[] {
  return descendantsIn(childrenByParent(), rootPid);
}

/**
 * ppid -> child pids of every process, read once: for walking several trees with one read
 * of /proc (see descendantsIn).
 */
export function processTable(): Map<number, number[]> {
  return childrenByParent();
}

/** `rootPid`'s descendants in a table read by processTable(), parents before children. */
export function descendantsIn(children: ReadonlyMap<number, readonly number[]>, rootPid: number): number[] {
  const out: number[] = [];
  const queue = [rootPid];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    for (const child of children.get(pid) ?? []) {
      if (out.includes(child)) continue; // a pid reused mid-walk must not loop
      out.push(child);
      queue.push(child);
    }
  }
  return out;
}

/** Sends `signal` to each pid; a pid that is already gone is skipped. Returns the pids signalled. */
export function signalPids(pids: Iterable<number>, signal: NodeJS.Signals): number[] {
  const sent: number[] = [];
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
      sent.push(pid);
    } catch {
      // ESRCH: already gone; EPERM: not ours any more (pid reused)
    }
  }
  return sent;
}

/**
 * The process's start time (clock ticks since boot, /proc/<pid>/stat field 22), or null when
 * it is gone or there is no /proc. Taken before a TERM and checked before the KILL, so a pid
 * the kernel reused meanwhile is left alone.
 */
export function startTimeOf(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** Resident set size of one process in bytes (VmRSS), or 0 when it is gone or unreadable. */
export function rssBytesOf(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'latin1');
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** ppid -> child pids, read from /proc (Linux) or `ps` elsewhere. */
function childrenByParent(): Map<number, number[]> {
  const map = new Map<number, number[]>();
  const add = (pid: number, ppid: number) => {
    const list = map.get(ppid);
    if (list) list.push(pid);
    else map.set(ppid, [pid]);
  };
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    for (const [pid, ppid] of psTable()) add(pid, ppid);
    return map;
  }
  for (const entry of entries) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    } catch {
      continue; // exited while we walked
    }
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so parse after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(rest[1]);
    if (Number.isInteger(ppid)) add(pid, ppid);
  }
  return map;
}

function psTable(): Array<[number, number]> {
  try {
    const out = execFileSync('ps', ['-A', '-o', 'pid=,ppid='], { encoding: 'utf8' });
    return out
      .split('\n')
      .map((line) => line.trim().split(/\s+/).map(Number) as [number, number])
      .filter(([pid, ppid]) => Number.isInteger(pid) && Number.isInteger(ppid));
  } catch {
    return [];
  }
}
