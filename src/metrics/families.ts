/**
 * Metric families that cost a few number operations per event. prom-client's own Counter
 * and Histogram hash their label set on every inc()/observe() (a string built per call);
 * here each label combination is a cell found through nested Maps keyed by the label values
 * (no allocation once the cell exists), and the cells are turned into prom-client's
 * MetricObject only at scrape time. prom-client still owns the registry, the exposition
 * format and Node's default metrics: these families register into it like its own.
 */
import type { Registry } from 'prom-client';

type Labels = Record<string, string>;
type MetricType = 'counter' | 'gauge' | 'histogram';
interface Sample {
  labels: Record<string, string | number>;
  value: number;
  /** For a histogram's _bucket, _sum and _count lines. */
  metricName?: string;
}
/** What prom-client's Registry reads from a metric at scrape time (its MetricObjectWithValues). */
export interface ExposedMetric {
  name: string;
  help: string;
  type: MetricType;
  aggregator: 'sum';
  values: Sample[];
}

/** Cells by label values, one Map level per label. */
class CellMap<C> {
  private readonly root = new Map<string, unknown>();
  private readonly all: C[] = [];

  constructor(
    private readonly labelNames: readonly string[],
    private readonly create: (labels: Labels) => C,
  ) {}

  get(values: readonly string[]): C {
    let level = this.root;
    const last = this.labelNames.length - 1;
    if (last < 0) return this.getNoLabels();
    for (let i = 0; i < last; i++) {
      let next = level.get(values[i]!) as Map<string, unknown> | undefined;
      if (next === undefined) {
        next = new Map();
        level.set(values[i]!, next);
      }
      level = next;
    }
    let cell = level.get(values[last]!) as C | undefined;
    if (cell === undefined) {
      const labels: Labels = {};
      this.labelNames.forEach((name, i) => (labels[name] = values[i]!));
      cell = this.create(labels);
      level.set(values[last]!, cell);
      this.all.push(cell);
    }
    return cell;
  }

  private noLabels: C | undefined;
  private getNoLabels(): C {
    if (this.noLabels === undefined) {
      this.noLabels = this.create({});
      this.all.push(this.noLabels);
    }
    return this.noLabels;
  }

  cells(): readonly C[] {
    return this.all;
  }

  clear(): void {
    this.root.clear();
    this.all.length = 0;
    this.noLabels = undefined;
  }
}

interface Definition {
  name: string;
  help: string;
  labelNames?: readonly string[];
}

abstract class Family<C> {
  readonly name: string;
  readonly help: string;
  abstract readonly type: MetricType;
  /** prom-client's Registry#resetMetrics() calls it. */
  reset(): void {
    this.map.clear();
  }
  readonly aggregator = 'sum' as const;
  readonly labelNames: readonly string[];
  protected readonly map: CellMap<C>;

  constructor(def: Definition, registry: Registry, create: (labels: Labels) => C) {
    this.name = def.name;
    this.help = def.help;
    this.labelNames = def.labelNames ?? [];
    this.map = new CellMap(this.labelNames, create);
    // prom-client formats any object with name, help, type and get() (see Registry#getMetricsAsString).
    registry.registerMetric(this as never);
  }

  /** The cell of these label values (in labelNames order); keep it to skip even the lookup. */
  cell(...values: string[]): C {
    return this.map.get(values);
  }

  abstract get(): Promise<ExposedMetric> | ExposedMetric;
}

export class CounterCell {
  value = 0;
  constructor(readonly labels: Labels) {}
  inc(by = 1): void {
    this.value += by;
  }
}

export class CounterFamily extends Family<CounterCell> {
  readonly type = 'counter';

  constructor(def: Definition, registry: Registry) {
    super(def, registry, (labels) => new CounterCell(labels));
  }

  get(): ExposedMetric {
    const values = this.map.cells().map((c) => ({ labels: c.labels, value: c.value }));
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

export class HistogramCell {
  /** Per bucket, observations <= its bound (not cumulative; summed at scrape). */
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(
    readonly labels: Labels,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Array<number>(bounds.length).fill(0);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    const b = this.bounds;
    // Buckets are few (10-15): a linear scan beats a binary search's branches here.
    for (let i = 0; i < b.length; i++) {
      if (value <= b[i]!) {
        this.counts[i]!++;
        break;
      }
    }
    this.sum += value;
    this.count++;
  }
}

export class HistogramFamily extends Family<HistogramCell> {
  readonly type = 'histogram';

  constructor(def: Definition & { buckets: readonly number[] }, registry: Registry) {
    const bounds = [...def.buckets].sort((a, b) => a - b);
    super(def, registry, (labels) => new HistogramCell(labels, bounds));
    this.bounds = bounds;
  }

  private readonly bounds: readonly number[];

  get(): ExposedMetric {
    const values: Sample[] = [];
    for (const c of this.map.cells()) {
      let cumulative = 0;
      this.bounds.forEach((bound, i) => {
        cumulative += c.counts[i]!;
        values.push({ metricName: `${this.name}_bucket`, labels: { ...c.labels, le: bound }, value: cumulative });
      });
      values.push({ metricName: `${this.name}_bucket`, labels: { ...c.labels, le: '+Inf' }, value: c.count });
      values.push({ metricName: `${this.name}_sum`, labels: c.labels, value: c.sum });
      values.push({ metricName: `${this.name}_count`, labels: c.labels, value: c.count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

/** A gauge read at scrape time: `read` returns its series (label values in labelNames order). */
export class GaugeFamily {
  readonly type = 'gauge';
  readonly aggregator = 'sum' as const;
  reset(): void {}
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];

  constructor(
    def: Definition,
    registry: Registry,
    private readonly read: () => Iterable<{ labels: readonly string[]; value: number }> | Promise<Iterable<{ labels: readonly string[]; value: number }>>,
  ) {
    this.name = def.name;
    this.help = def.help;
    this.labelNames = def.labelNames ?? [];
    registry.registerMetric(this as never);
  }

  async get(): Promise<ExposedMetric> {
    const values: Sample[] = [];
    for (const s of await this.read()) {
      const labels: Labels = {};
      this.labelNames.forEach((name, i) => (labels[name] = s.labels[i]!));
      values.push({ labels, value: s.value });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
