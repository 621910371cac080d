/**
 * Statements sent on one connection without waiting for each answer: node-postgres's pipeline
 * mode (the Pool is created with `pipeline: true`) writes every query as soon as it is called,
 * each with its own Sync, and PostgreSQL runs them one after the other in that order. A write
 * batch's independent statements (BEGIN, the task-instance compare-and-sets, heartbeats,
 * XComs, run states) then cost one round trip together instead of one each; only a statement
 * that needs an earlier answer (a callback owed only if its write applied, the change feed's
 * rows) waits for it. On a scheduler whose event loop is busy, every round trip also waits for
 * a turn of the loop, so this matters more than the server's own latency suggests.
 *
 * Inside a transaction, a failed statement makes every later one fail with "current
 * transaction is aborted" and turns COMMIT into a rollback: the error that counts is the first
 * one in the order the statements were sent, which `settle` returns.
 */
export class PgPipeline {
  private readonly sent: Array<Promise<unknown>> = [];

  /**
   * Tracks a query already sent, or a promise derived from such answers; the caller may await
   * it or leave it to settle(). Every promise that may reject without being awaited must pass
   * here: an unhandled rejection ends the process.
   */
  send<T>(query: Promise<T>): Promise<T> {
    // Answered with an error nobody awaits yet: settle() reports it, so no unhandled rejection.
    query.catch(() => undefined);
    this.sent.push(query);
    return query;
  }

  /** Waits for every answer; resolves with the first error in send order, or undefined. */
  async settle(): Promise<unknown> {
    const answers = await Promise.allSettled(this.sent.splice(0));
    const failed = answers.find((a): a is PromiseRejectedResult => a.status === 'rejected');
    return failed?.reason;
  }

  /** Waits for every answer; throws the first error in send order. */
  async flush(): Promise<void> {
    const err = await this.settle();
    if (err !== undefined) throw err;
  }
}
