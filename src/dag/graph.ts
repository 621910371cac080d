import { DagValidationError } from '../errors.js';
import type { ResolvedTaskOptions } from './types.js';

/**
 * Checks that every upstream names a task of the DAG and that the graph has no cycle.
 * A cycle is reported as the path that closes it: "a -> b -> c -> a".
 */
export function validateGraph(dagId: string, tasks: ReadonlyMap<string, Pick<ResolvedTaskOptions, 'upstream'>>): void {
  for (const [taskId, task] of tasks) {
    for (const up of task.upstream) {
      if (up === taskId) throw new DagValidationError(`DAG '${dagId}': task '${taskId}' lists itself as upstream (cycle: ${taskId} -> ${taskId})`, { dagId, taskId, option: 'upstream' });
      if (!tasks.has(up)) throw new DagValidationError(`DAG '${dagId}', task '${taskId}': option 'upstream' names unknown task '${up}'`, { dagId, taskId, option: 'upstream' });
    }
  }
  // Iterative DFS with colours; the stack of grey nodes is the current path.
  const colour = new Map<string, 1 | 2>(); // 1 = on the current path, 2 = done
  for (const start of tasks.keys()) {
    if (colour.has(start)) continue;
    const path: string[] = [];
    const stack: Array<{ id: string; next: number }> = [{ id: start, next: 0 }];
    colour.set(start, 1);
    path.push(start);
    while (stack.length > 0) {
      const frame = stack[stack.length - 1]!;
      const ups = tasks.get(frame.id)!.upstream;
      if (frame.next < ups.length) {
        const up = ups[frame.next++]!;
        const c = colour.get(up);
        if (c === 1) {
          const cycle = [...path.slice(path.indexOf(up)), up].reverse();
          throw new DagValidationError(`DAG '${dagId}': cycle ${cycle.join(' -> ')}`, { dagId, taskId: up, option: 'upstream' });
        }
        if (c === undefined) {
          colour.set(up, 1);
          path.push(up);
          stack.push({ id: up, next: 0 });
        }
      } else {
        colour.set(frame.id, 2);
        path.pop();
        stack.pop();
      }
    }
  }
}

/** Downstream adjacency, built once per DAG version. */
export function downstreamMap(tasks: Iterable<{ taskId: string; upstream: readonly string[] }>): Map<string, string[]> {
  const down = new Map<string, string[]>();
  const list = [...tasks];
  for (const t of list) down.set(t.taskId, []);
  for (const t of list) for (const up of t.upstream) down.get(up)?.push(t.taskId);
  return down;
}
