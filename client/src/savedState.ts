/**
 * Which local edits the server has stored durably. The protocol has no acknowledgements,
 * but every answer to a `sync` carries two facts about the server's durable state (it
 * loads only what is already in DynamoDB): its SyncStep2 holds the server's whole delete
 * set, and its own SyncStep1 is its state vector. An edit is stored once the state vector
 * covers the clocks it created and the delete set covers what it deleted. Each fact only
 * ever grows, so the two may come from different answers.
 */

import { createDeleteSetFromStructStore, decodeStateVector, encodeStateVector } from 'yjs';
import type * as Y from 'yjs';

/** One deleted range `[clock, clock + len)` of one client's items. */
interface DeletedRange {
  client: number;
  clock: number;
  len: number;
}

/** One local transaction that is not known to be stored yet. */
interface PendingEdit {
  /** For each client whose clock the edit advanced, the clock after it. */
  clocks: Map<number, number>;
  deletes: DeletedRange[];
}

/** A Yjs DeleteSet (yjs exports no type for it): deleted `{clock, len}` ranges per client. */
export interface DeleteSetLike {
  clients: Map<number, ReadonlyArray<{ clock: number; len: number }>>;
}

/** The parts of a Yjs transaction this module reads. */
export interface EditTransaction extends Pick<Y.Transaction, 'beforeState' | 'afterState'> {
  deleteSet: DeleteSetLike;
}

export class SavedState {
  private pending: PendingEdit[] = [];

  /** Local edits not yet known to be stored. */
  get unsyncedChanges(): number {
    return this.pending.length;
  }

  get saved(): boolean {
    return this.pending.length === 0;
  }

  /** Record a local transaction; returns false when it changed nothing. */
  record(transaction: EditTransaction): boolean {
    const clocks = new Map<number, number>();
    for (const [client, after] of transaction.afterState) {
      if (after > (transaction.beforeState.get(client) ?? 0)) clocks.set(client, after);
    }
    const deletes: DeletedRange[] = [];
    for (const [client, items] of transaction.deleteSet.clients) {
      for (const { clock, len } of items) if (len > 0) deletes.push({ client, clock, len });
    }
    if (clocks.size === 0 && deletes.length === 0) return false;
    this.pending.push({ clocks, deletes });
    return true;
  }

  /**
   * Everything `doc` holds already (loaded from local storage, or edited while no provider
   * ran) counts as unsaved until the server is seen to hold it too.
   */
  recordExisting(doc: Y.Doc): void {
    this.record({
      beforeState: new Map(),
      afterState: decodeStateVector(encodeStateVector(doc)),
      deleteSet: createDeleteSetFromStructStore(doc.store),
    });
  }

  /** The server's state vector (from its SyncStep1) is durable: drop the creations it covers. */
  confirmStateVector(stateVector: Map<number, number>): void {
    for (const edit of this.pending) {
      for (const [client, clock] of edit.clocks) {
        if ((stateVector.get(client) ?? 0) >= clock) edit.clocks.delete(client);
      }
    }
    this.prune();
  }

  /** The server's delete set (from its SyncStep2) is durable: drop the deletions it covers. */
  confirmDeleteSet(deleteSet: DeleteSetLike): void {
    if (!this.pending.some((edit) => edit.deletes.length > 0)) return;
    const merged = mergedRanges(deleteSet);
    for (const edit of this.pending) {
      edit.deletes = edit.deletes.filter((range) => !covers(merged.get(range.client), range));
    }
    this.prune();
  }

  /** Whether any pending edit deleted something (only then is a delete set worth decoding). */
  get awaitsDeletions(): boolean {
    return this.pending.some((edit) => edit.deletes.length > 0);
  }

  private prune(): void {
    this.pending = this.pending.filter((edit) => edit.clocks.size > 0 || edit.deletes.length > 0);
  }
}

type Range = { clock: number; len: number };

/** Sorted, merged ranges per client: an encoder need not have merged them. */
function mergedRanges(deleteSet: DeleteSetLike): Map<number, Range[]> {
  const result = new Map<number, Range[]>();
  for (const [client, items] of deleteSet.clients) {
    const sorted = [...items].sort((a, b) => a.clock - b.clock);
    const ranges: Range[] = [];
    for (const { clock, len } of sorted) {
      const last = ranges.at(-1);
      if (last !== undefined && last.clock + last.len >= clock) {
        last.len = Math.max(last.len, clock + len - last.clock);
      } else {
        ranges.push({ clock, len });
      }
    }
    result.set(client, ranges);
  }
  return result;
}

/** Whether one of the merged `ranges` contains all of `range` (binary search). */
function covers(ranges: Range[] | undefined, range: DeletedRange): boolean {
  if (ranges === undefined) return false;
  let low = 0;
  let high = ranges.length - 1;
  while (low <= high) {
    const middle = (low + high) >> 1;
    const candidate = ranges[middle]!;
    if (candidate.clock > range.clock) {
      high = middle - 1;
    } else if (candidate.clock + candidate.len <= range.clock) {
      low = middle + 1;
    } else {
      return candidate.clock + candidate.len >= range.clock + range.len;
    }
  }
  return false;
}
