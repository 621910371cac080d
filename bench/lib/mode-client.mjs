/** The case side of mode-server.mjs: fork a server, call it, close it. */
import { fork } from 'node:child_process';
import { startRssSampler } from './rss.mjs';

const SERVER = new URL('./mode-server.mjs', import.meta.url);

export function startModeServer(name, { execArgv = [] } = {}) {
  const child = fork(SERVER, [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
  let seq = 0;
  const pending = new Map();
  let exitError = null;
  child.on('message', (msg) => {
    const p = pending.get(msg.id);
    if (!p) return;
    pending.delete(msg.id);
    if (msg.ok) p.resolve(msg.value);
    else p.reject(new Error(`${name}: ${msg.error}`));
  });
  child.on('exit', (code, signal) => {
    exitError = new Error(`${name} mode server exited (${code ?? signal})`);
    for (const p of pending.values()) p.reject(exitError);
    pending.clear();
  });
  return {
    name,
    pid: child.pid,
    call(cmd, args = {}) {
      if (exitError) return Promise.reject(exitError);
      const id = ++seq;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        child.send({ id, cmd, ...args });
      });
    },
    /** 'run' with the server's process tree sampled for peak RSS from here. */
    async run(args) {
      const rss = startRssSampler(child.pid);
      try {
        const value = await this.call('run', args);
        return { ...value, peakRssBytes: rss.stop() };
      } finally {
        rss.stop();
      }
    },
    async close() {
      if (exitError) return;
      try {
        await this.call('close');
      } catch {}
      await new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}
