/**
 * CPU time (user + system, ms) of one process so far, from /proc; 0 when it is gone (or off
 * Linux). With `tid`, of that one thread of it (/proc/<pid>/task/<tid>/stat; /proc/<tid>/stat
 * would count the whole process).
 */
import { readFileSync } from 'node:fs';

export function procCpuMs(pid, tid = null) {
  try {
    // After the command name: state ppid ... utime (14th field) stime (15th), in clock ticks (100/s).
    const fields = readFileSync(tid === null ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return 0;
  }
}
