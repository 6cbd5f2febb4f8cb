/**
 * What the provider sends for local changes, batched so that messages (API Gateway's bill)
 * stay few: an edit and the awareness change of the same moment (the cursor move it
 * causes) go out as one `update` frame carrying the awareness in its `awareness` field;
 * edits of one task are merged into one update; and awareness changes on their own go out
 * at most once per `throttle` ms, the latest state winning. Edits go out at most once per
 * `updateThrottle` ms (leading edge: an edit after a pause leaves at the end of its task,
 * the ones typed within the next `updateThrottle` ms leave together when it ends); with
 * the default 0 nothing waits longer than a microtask but a throttled awareness change. A
 * removal of the local state (the page is closing) goes out at once.
 */

export type FlushSink = (updates: Uint8Array[], awareness: boolean) => void;

export class OutgoingBatch {
  private updates: Uint8Array[] = [];
  private awarenessPending = false;
  private scheduled = false;
  private throttleTimer: ReturnType<typeof setTimeout> | null = null;
  private timerDue = Number.POSITIVE_INFINITY;
  private lastAwarenessAt = Number.NEGATIVE_INFINITY;
  private lastUpdateAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly sink: FlushSink,
    private readonly throttle: number,
    private readonly now: () => number = Date.now,
    private readonly updateThrottle = 0,
  ) {}

  /** A local edit: sent at the end of the current task, with any awareness change. */
  update(update: Uint8Array): void {
    this.updates.push(update);
    this.schedule();
  }

  /** The local awareness state changed; `urgent` sends it (and any edit) right now. */
  awareness(urgent = false): void {
    this.awarenessPending = true;
    if (urgent) this.flush();
    else this.schedule();
  }

  /** Send whatever is pending now. */
  flush(): void {
    this.clearTimer();
    const updates = this.updates;
    const awareness = this.awarenessPending;
    this.updates = [];
    this.awarenessPending = false;
    if (updates.length === 0 && !awareness) return;
    const now = this.now();
    if (awareness) this.lastAwarenessAt = now;
    if (updates.length > 0) this.lastUpdateAt = now;
    this.sink(updates, awareness);
  }

  /** Forget what is pending (the connection ended: the next sync repairs edits). */
  clear(): void {
    this.clearTimer();
    this.updates = [];
    this.awarenessPending = false;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.endOfTask();
    });
  }

  private endOfTask(): void {
    if (this.updates.length > 0) {
      // The awareness change of the same moment rides along, whenever the edit leaves.
      this.flushIn(this.lastUpdateAt + this.updateThrottle - this.now());
      return;
    }
    if (this.awarenessPending) this.flushIn(this.lastAwarenessAt + this.throttle - this.now());
  }

  /** Flush now if `wait` is not positive, else in `wait` ms (or sooner, if already due). */
  private flushIn(wait: number): void {
    if (wait <= 0) {
      this.flush();
      return;
    }
    const due = this.now() + wait;
    if (this.throttleTimer !== null && this.timerDue <= due) return;
    this.clearTimer();
    this.timerDue = due;
    this.throttleTimer = setTimeout(() => {
      this.throttleTimer = null;
      this.timerDue = Number.POSITIVE_INFINITY;
      this.flush();
    }, wait);
  }

  private clearTimer(): void {
    if (this.throttleTimer !== null) clearTimeout(this.throttleTimer);
    this.throttleTimer = null;
    this.timerDue = Number.POSITIVE_INFINITY;
  }
}
