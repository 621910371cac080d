/** Built-in executor 'spawn': the local executor, pre-warming (and defaulting to) the spawn isolation. */
import { createLocalExecutor } from '../local-executor.js';
import type { ExecutorFactory } from '../types.js';

export const defaultIsolation = 'spawn';

const factory: ExecutorFactory = (options) => createLocalExecutor(options);
export default factory;
