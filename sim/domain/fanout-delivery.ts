// The last step of a fan-out: a chunk of followers' feed lists get the post. It needs nothing but
// Redis, so besides the server that plans a fan-out, `scalegram worker` processes can do it (with a
// real Redis and RabbitMQ): the same handler, registered here for both.

import type { Metrics } from '../observability/metrics.ts';
import type { FeedStore } from '../parts/feed-store.ts';
import type { JobInfo, Jobs } from '../parts/job-queue.ts';
import { isSimError, simError } from '../engine/errors.ts';

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
    // A chunk that may have been started before is delivered idempotently.
    const again = p.replay || job.redelivered;
    try {
      if (!again) return await feeds.push(p.userIds, p.mediaId);
      const n = await feeds.pushOnce(p.userIds, p.mediaId);
      if (n < p.userIds.length) metrics.inc('fanout_duplicates_skipped', {}, p.userIds.length - n);
      return n;
    } catch (err) {
      if (isSimError(err)) throw err;
      // Redis did not answer (ioredis gave up on the command): on RabbitMQ the chunk goes back to
      // the broker rather than being counted as failed, and may have written some lists already.
      throw simError('SG_ERR_BACKEND_UNREACHABLE', `Redis did not take the chunk's deliveries: ${(err as Error)?.message ?? String(err)}`, { backend: 'redis' });
    }
  });
}
