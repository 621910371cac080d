/** A minimal Server-Sent Events client over fetch, for tests: messages as they arrive, in order. */
export interface SseMessage {
  event: string;
  id: string | undefined;
  data: string;
}

export interface SseStream {
  /** The next message, or a timeout error naming what was awaited. */
  next(timeoutMs?: number): Promise<SseMessage>;
  /** Messages until one matches `predicate` (inclusive). */
  until(predicate: (m: SseMessage) => boolean, timeoutMs?: number): Promise<SseMessage[]>;
  close(): void;
  status: number;
}

export async function openSse(url: string, headers: Record<string, string> = {}): Promise<SseStream> {
  const abort = new AbortController();
  const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: abort.signal });
  const queue: SseMessage[] = [];
  const waiters: Array<() => void> = [];
  let failure: Error | null = null;
  const pump = async () => {
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error('the stream ended');
      buffer += value;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const m: SseMessage = { event: 'message', id: undefined, data: '' };
        let any = false;
        for (const line of block.split('\n')) {
          if (line.startsWith(':') || line === '') continue;
          const i = line.indexOf(':');
          const field = i < 0 ? line : line.slice(0, i);
          const v = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
          any = true;
          if (field === 'event') m.event = v;
          else if (field === 'id') m.id = v;
          else if (field === 'data') m.data = m.data === '' ? v : `${m.data}\n${v}`;
        }
        if (any) queue.push(m);
        waiters.splice(0).forEach((w) => w());
      }
    }
  };
  pump().catch((err: Error) => {
    failure = err;
    waiters.splice(0).forEach((w) => w());
  });
  const next = async (timeoutMs = 10_000): Promise<SseMessage> => {
    const deadline = Date.now() + timeoutMs;
    while (queue.length === 0) {
      if (failure && !abort.signal.aborted) throw failure;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no SSE message within ${timeoutMs} ms from ${url}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return queue.shift()!;
  };
  return {
    status: res.status,
    next,
    async until(predicate, timeoutMs = 10_000) {
      const out: SseMessage[] = [];
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = await next(Math.max(1, deadline - Date.now()));
        out.push(m);
        if (predicate(m)) return out;
      }
    },
    close: () => abort.abort(),
  };
}
