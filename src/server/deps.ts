import type { ChangeFeedFollower } from '../app/change-feed.js';
import type { KilnConfig } from '../config/load.js';
import type { Store } from '../store/types.js';

/** What every route reads: one store for the server's life, the config, the one feed follower. */
export interface ServerDeps {
  store: Store;
  config: KilnConfig;
  feed: ChangeFeedFollower;
}
