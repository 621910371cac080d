/**
 * Gauges that come from the database, computed at scrape time from one statement (the
 * store's metricsSnapshot) and cached for `cacheMs`, so a scrape every few seconds by
 * several Prometheus servers costs one cheap query, and nothing is read between scrapes.
 * A read that fails leaves these gauges out of that scrape (and kiln_database_up at 0)
 * rather than failing the whole scrape.
 */
import type { Registry } from 'prom-client';
import { GaugeFamily } from './families.js';

/** The shape of Store.metricsSnapshot() (metrics/ does not import the store). */
export interface DatabaseSnapshot {
  taskInstances: ReadonlyArray<{ dagId: string; state: string; pool: string; count: number; poolSlots: number }>;
  runs: ReadonlyArray<{ dagId: string; state: string; count: number }>;
  pools: ReadonlyArray<{ name: string; slots: number }>;
  importErrors: number;
}

type Series = Array<{ labels: readonly string[]; value: number }>;

interface Derived {
  taskInstances: Series;
  runs: Series;
  poolSlots: Series;
  starving: Series;
  importErrors: Series;
}

export const DEFAULT_DATABASE_CACHE_MS = 5_000;

export class DatabaseGauges {
  private cached: { at: number; value: Promise<Derived | null> } | null = null;
  private up = 0;

  constructor(
    registry: Registry,
    private readonly read: () => Promise<DatabaseSnapshot>,
    private readonly cacheMs = DEFAULT_DATABASE_CACHE_MS,
    private readonly now: () => number = Date.now,
  ) {
    const from = (pick: (d: Derived) => Series) => async (): Promise<Series> => {
      const d = await this.current();
      return d === null ? [] : pick(d);
    };
    new GaugeFamily({ name: 'kiln_task_instances', help: 'Unfinished task instances (scheduled, queued, running, up_for_retry, up_for_reschedule) in the database.', labelNames: ['dag_id', 'state'] }, registry, from((d) => d.taskInstances));
    new GaugeFamily({ name: 'kiln_dag_runs', help: 'Queued and running DAG runs in the database.', labelNames: ['dag_id', 'state'] }, registry, from((d) => d.runs));
    new GaugeFamily({
      name: 'kiln_pool_slots',
      help: 'Pool slots by state: open (slots - running - queued; negative when a pool was shrunk below what it holds), running, queued.',
      labelNames: ['pool', 'state'],
    }, registry, from((d) => d.poolSlots));
    new GaugeFamily({ name: 'kiln_pool_starving_tasks', help: 'Scheduled task instances waiting for a pool that has no open slot (or does not exist).', labelNames: ['pool'] }, registry, from((d) => d.starving));
    new GaugeFamily({ name: 'kiln_dag_import_errors', help: 'DAG files that currently fail to import.' }, registry, from((d) => d.importErrors));
    new GaugeFamily({ name: 'kiln_database_up', help: '1 if the last scrape-time read of the database succeeded, else 0.' }, registry, async () => {
      await this.current();
      return [{ labels: [], value: this.up }];
    });
  }

  /** The snapshot of the last `cacheMs`, or a fresh one (one read at a time, shared by every gauge). */
  private current(): Promise<Derived | null> {
    const now = this.now();
    if (this.cached !== null && now - this.cached.at < this.cacheMs) return this.cached.value;
    const value = this.read().then(
      (snapshot) => {
        this.up = 1;
        return derive(snapshot);
      },
      () => {
        this.up = 0;
        this.cached = null; // try again at the next scrape
        return null;
      },
    );
    this.cached = { at: now, value };
    return value;
  }
}

/** The gauges' series from one snapshot. Pools named by task instances but missing from the pool table still show their running and queued slots. */
export function derive(s: DatabaseSnapshot): Derived {
  const taskInstances = new Map<string, { labels: string[]; value: number }>();
  const pools = new Map<string, { slots: number | null; running: number; queued: number; scheduled: number }>();
  const pool = (name: string) => {
    let p = pools.get(name);
    if (p === undefined) pools.set(name, (p = { slots: null, running: 0, queued: 0, scheduled: 0 }));
    return p;
  };
  for (const p of s.pools) pool(p.name).slots = p.slots;
  for (const t of s.taskInstances) {
    const key = `${t.dagId}\u0000${t.state}`;
    const entry = taskInstances.get(key);
    if (entry === undefined) taskInstances.set(key, { labels: [t.dagId, t.state], value: t.count });
    else entry.value += t.count;
    const p = pool(t.pool);
    if (t.state === 'running') p.running += t.poolSlots;
    else if (t.state === 'queued') p.queued += t.poolSlots;
    else if (t.state === 'scheduled') p.scheduled += t.count;
  }
  const poolSlots: Series = [];
  const starving: Series = [];
  for (const [name, p] of pools) {
    const open = p.slots === null ? null : p.slots - p.running - p.queued;
    if (open !== null) poolSlots.push({ labels: [name, 'open'], value: open });
    poolSlots.push({ labels: [name, 'running'], value: p.running }, { labels: [name, 'queued'], value: p.queued });
    // A pool missing from the pool table has no slot at all: its tasks wait until it is created.
    starving.push({ labels: [name], value: open === null || open <= 0 ? p.scheduled : 0 });
  }
  return {
    taskInstances: [...taskInstances.values()],
    runs: s.runs.map((r) => ({ labels: [r.dagId, r.state], value: r.count })),
    poolSlots,
    starving,
    importErrors: [{ labels: [], value: s.importErrors }],
  };
}
