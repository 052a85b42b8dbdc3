// Filling a page of a list that holds items the viewer may not see (private owners, blocks either
// way, media deleted since the list was written): rows are read in batches after a cursor until
// `count` visible items are found, and then one more, so that a next page is offered only when a
// visible item follows.
//
// Every scan is budgeted (SCAN_BUDGET_ROWS rows read per request). When the budget is spent the
// page holds what was found so far and its cursor points past the last row read: the list is not
// over, the next page goes on from there. That is the only way a page comes back short with a
// next cursor, and it is counted (`list_scan_budget_exhausted{list}`).

/** Rows one request may read while filling a page (count); about a hundred hidden items per visible one at count=20. */
export const SCAN_BUDGET_ROWS = 2000;
/** Largest batch read at once (rows). */
const MAX_BATCH_ROWS = 200;

export interface ScanRow {
  /** Where the list resumes after this row (an id, a like id, an edge id: what the list pages by). */
  cursor: string;
}

export interface ScanBatch<R extends ScanRow> {
  /** Rows in list order, each strictly after the cursor asked for. */
  rows: R[];
  /** True when the list has no rows after these. */
  exhausted: boolean;
}

export interface ScanOptions<R extends ScanRow, T> {
  /** Visible items wanted (≥ 1). */
  count: number;
  /** Start after this cursor (exclusive), or at the head of the list. */
  after?: string | undefined;
  /** Reads up to `limit` rows after `after`. */
  fetch(after: string | undefined, limit: number): Promise<ScanBatch<R>>;
  /** For each row, the item the viewer sees, or null when it is hidden or gone (same order, same length). */
  keep(rows: readonly R[]): Promise<Array<T | null>>;
  /** Rows this scan may read (count); default SCAN_BUDGET_ROWS. */
  budgetRows?: number;
}

export interface ScanResult<T> {
  items: T[];
  /** The cursor of the next page, or null when no visible item follows. */
  nextCursor: string | null;
  /** True when the scan stopped on its budget (the page may be short; nextCursor goes on after the rows read). */
  budgetSpent: boolean;
  /** Rows read (count). */
  rowsRead: number;
}

export async function scanVisible<R extends ScanRow, T>(opts: ScanOptions<R, T>): Promise<ScanResult<T>> {
  const budget = opts.budgetRows ?? SCAN_BUDGET_ROWS;
  const items: T[] = [];
  let lastItemCursor: string | null = null;
  let after = opts.after;
  let rowsRead = 0;
  // The first batch is what an unfiltered page costs (count + 1 to see past the end); later ones grow.
  let limit = opts.count + 1;
  for (;;) {
    const room = budget - rowsRead;
    if (room <= 0) return { items, nextCursor: after ?? lastItemCursor, budgetSpent: true, rowsRead };
    const batch = await opts.fetch(after, Math.min(limit, room, MAX_BATCH_ROWS));
    const rows = batch.rows;
    rowsRead += rows.length;
    const kept = rows.length > 0 ? await opts.keep(rows) : [];
    for (let i = 0; i < rows.length; i++) {
      const item = kept[i];
      if (item === null || item === undefined) continue;
      // A visible item past a full page: there is a next page, and it starts after the page's last item.
      if (items.length === opts.count) return { items, nextCursor: lastItemCursor, budgetSpent: false, rowsRead };
      items.push(item);
      lastItemCursor = rows[i]!.cursor;
    }
    if (batch.exhausted || rows.length === 0) return { items, nextCursor: null, budgetSpent: false, rowsRead };
    after = rows[rows.length - 1]!.cursor;
    limit = Math.min(MAX_BATCH_ROWS, Math.max(opts.count + 1 - items.length, limit * 2));
  }
}
