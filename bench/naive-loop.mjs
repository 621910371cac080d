/**
 * The deliberately naive scheduler loop (benchmark only, never part of kiln): every tick it
 * loads every task instance of every running run, the way Airflow's scheduler did with
 * joinedload(DagRun.task_instances), and makes its time-based decisions (zombies, tries
 * queued too long) by scanning them all in memory. kiln's loop asks the database for the
 * few rows those decisions need instead; case 3 compares the two.
 */
export async function naiveTick(store, { schedulerId, now, zombieTimeoutMs, queuedTimeoutMs }) {
  await store.heartbeatScheduler({ id: schedulerId, hostname: 'bench', pid: process.pid, startedAt: now, lastHeartbeatAt: now });
  await store.listDags();
  const runs = await store.listRuns({ states: ['running'] });
  const actions = [];
  for (const run of runs) {
    const tis = await store.getTaskInstances(run.dagId, run.runId);
    for (const ti of tis) {
      if (ti.state === 'running' && now - (ti.lastHeartbeatAt ?? ti.startedAt ?? now) > zombieTimeoutMs) actions.push({ kind: 'zombie', ti });
      else if (ti.state === 'queued' && ti.queuedAt !== null && now - ti.queuedAt > queuedTimeoutMs) actions.push({ kind: 'requeue', ti });
    }
  }
  return actions;
}
