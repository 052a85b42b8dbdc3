// The last step of a fan-out: a chunk of followers' feed lists get the post. It needs nothing but
// Redis, so besides the server that plans a fan-out, `scalegram worker` processes can do it (with a
// real Redis and RabbitMQ): the same handler, registered here for both.

import type { Metrics } from '../observability/metrics.ts';
import type { FeedStore } from '../parts/feed-store.ts';
import type { JobInfo, Jobs } from '../parts/job-queue.ts';

/** The `fanout-chunk` job. */
export interface DeliveryJob {
  mediaId: string;
  /** Followers whose lists get the post. */
  userIds: string[];
  /** A fan-out run again (after a crash): skip lists that hold the post. */
  replay: boolean;
}

export const DELIVERY_KIND = 'fanout-chunk';

/**
 * Registers the `fanout-chunk` handler. It resolves with the deliveries made. A chunk run again —
 * a replayed fan-out, or one the broker hands out again because the worker that had it died before
 * acking — skips lists that already hold the post (FeedStore.pushOnce), so no list gets it twice;
 * those skips are counted as `fanout_duplicates_skipped`.
 */
export function registerDelivery(queue: Jobs, feeds: FeedStore, metrics: Metrics): void {
  metrics.describe('fanout_duplicates_skipped', 'Deliveries of a chunk run again that found the post already in the list (count)');
  queue.register(DELIVERY_KIND, async (p: DeliveryJob, job: JobInfo): Promise<number> => {
    if (!p.replay && !job.redelivered) return feeds.push(p.userIds, p.mediaId);
    const n = await feeds.pushOnce(p.userIds, p.mediaId);
    if (n < p.userIds.length) metrics.inc('fanout_duplicates_skipped', {}, p.userIds.length - n);
    return n;
  });
}
