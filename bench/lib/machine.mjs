/** What the numbers were measured on: recorded with every result. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, freemem, loadavg, release, totalmem, type } from 'node:os';

const REPO = new URL('../../', import.meta.url);

export function describeMachine() {
  const cpuList = cpus();
  return {
    cpuModel: cpuModel() ?? cpuList[0]?.model ?? 'unknown',
    cores: cpuList.length,
    memoryBytes: totalmem(),
    freeMemoryBytes: freemem(),
    os: `${type()} ${release()}`,
    node: process.version,
    v8: process.versions.v8,
    loadAverage: loadavg(),
    commit: git(['rev-parse', '--short', 'HEAD']),
    dirty: (git(['status', '--porcelain', '--untracked-files=no']) ?? '').length > 0,
    // The tree is shared: what was built into dist/ beyond the commit (others' work in progress).
    uncommitted: (git(['status', '--porcelain', '--untracked-files=all', '--', 'src', 'workers']) ?? '').split('\n').filter(Boolean).map((l) => l.trim()),
    at: new Date().toISOString(),
  };
}

/** /proc/cpuinfo often names the CPU more precisely than os.cpus() (which may say just "AMD EPYC"). */
function cpuModel() {
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const model = /^model name\s*:\s*(.+)$/m.exec(info)?.[1]?.trim();
    const mhz = /^cpu MHz\s*:\s*(.+)$/m.exec(info)?.[1]?.trim();
    return model ? `${model}${mhz ? ` @ ${Math.round(Number(mhz))} MHz` : ''}` : null;
  } catch {
    return null;
  }
}

function git(args) {
  try {
    return execFileSync('git', args, { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}
