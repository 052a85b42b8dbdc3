// Who may see whose media and lists. The Store decides (`canView`: private accounts need an
// approved follow, blocks hide both ways); this file asks it once per distinct owner and refuses
// with APINotAllowedError.

import type { Store, UserRecord } from '../sim/domain/store.ts';
import { apiError } from './errors.ts';
import { idOf } from './params.ts';

/** Throws APINotAllowedError unless `viewerId` may see `ownerId`'s media and lists. */
export async function assertCanView(store: Store, viewerId: string, ownerId: string): Promise<void> {
  if (viewerId === ownerId) return;
  if (!(await store.canView(viewerId, ownerId))) throw apiError('SG_HTTP_NOT_ALLOWED', 'This user is private or has blocked you');
}

/** The subset of `ownerIds` whose media `viewerId` may see: one batched check in the store. */
export async function visibleOwners(store: Store, viewerId: string, ownerIds: readonly string[]): Promise<Set<string>> {
  return store.canViewMany(viewerId, ownerIds);
}

/**
 * The user `id` if it exists (else APINotFoundError) and `viewerId` may see its media and lists
 * (else APINotAllowedError). Both questions go to the store at once; not-found wins.
 */
export async function visibleUser(store: Store, viewerId: string, id: string): Promise<UserRecord> {
  const [user, allowed] = await Promise.all([
    store.getUser(id),
    viewerId === id ? { ok: true } : store.canView(viewerId, id).then((ok) => ({ ok }), (err: unknown) => ({ ok: false, err })),
  ]);
  if (!user) throw apiError('SG_HTTP_NOT_FOUND', 'This user does not exist');
  if ('err' in allowed) throw allowed.err;
  if (!allowed.ok) throw apiError('SG_HTTP_NOT_ALLOWED', 'This user is private or has blocked you');
  return user;
}

/** The media id if the media exists (else APINotFoundError) and the viewer may see it (else APINotAllowedError). */
export async function visibleMediaId(store: Store, viewerId: string, rawId: string): Promise<string> {
  const id = idOf(rawId, 'id');
  const media = await store.getMedia(id);
  if (!media) throw apiError('SG_HTTP_NOT_FOUND', 'This media does not exist');
  await assertCanView(store, viewerId, media.userId);
  return id;
}
