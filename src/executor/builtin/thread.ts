/** Built-in executor 'thread': the local executor, pre-warming (and defaulting to) the thread isolation. */
import { createLocalExecutor } from '../local-executor.js';
import type { ExecutorFactory } from '../types.js';

export const defaultIsolation = 'thread';

const factory: ExecutorFactory = (options) => createLocalExecutor(options);
export default factory;
