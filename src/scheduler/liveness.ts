/**
 * Time-based liveness decisions for the task instances a scheduler drives. Pure: the
 * scheduler loop reads the candidate rows (running / queued task instances only, never
 * every task instance of the running runs) and applies what this returns.
 */
import type { TiRow } from '../store/types.js';

export type LivenessAction =
  /** A running try without a heartbeat for too long: fail it (or put it up for retry). */
  | { kind: 'zombie'; ti: TiRow; reason: string }
  /** A try queued for too long without starting: drop it and queue the task again. */
  | { kind: 'requeue'; ti: TiRow; reason: string };

export interface LivenessInput {
  running: readonly TiRow[];
  queued: readonly TiRow[];
  now: number;
  zombieTimeoutMs: number;
  queuedTimeoutMs: number;
  /** Whether this scheduler drives the task instance's run (others handle their own). */
  isMine: (ti: TiRow) => boolean;
}

export function livenessActions(input: LivenessInput): LivenessAction[] {
  const { now } = input;
  const out: LivenessAction[] = [];
  for (const ti of input.running) {
    if (ti.state !== 'running' || !input.isMine(ti)) continue;
    const lastSign = ti.lastHeartbeatAt ?? ti.startedAt ?? ti.queuedAt;
    if (lastSign === null) continue;
    const silentMs = now - lastSign;
    if (silentMs > input.zombieTimeoutMs) out.push({ kind: 'zombie', ti, reason: `zombie: no heartbeat for ${seconds(silentMs)}s` });
  }
  for (const ti of input.queued) {
    if (ti.state !== 'queued' || ti.queuedAt === null || !input.isMine(ti)) continue;
    const waitedMs = now - ti.queuedAt;
    if (waitedMs > input.queuedTimeoutMs) out.push({ kind: 'requeue', ti, reason: `queued for ${seconds(waitedMs)}s without starting: queued again` });
  }
  return out;
}

function seconds(ms: number): number {
  return Math.round(ms / 1000);
}
