/**
 * Built-in executor 'bullmq': tries run on `kiln worker` hosts, through BullMQ queues on
 * Redis (see bullmq-executor.ts). Registered in executor/registry.ts by path, like a plugin;
 * bullmq itself is imported when the executor starts.
 */
import type { ExecutorFactory } from '../executor/types.js';
import { BullmqExecutor } from './bullmq-executor.js';
import { bullmqSettings } from './settings.js';

const factory: ExecutorFactory = (options) => new BullmqExecutor(bullmqSettings(options));
export default factory;
