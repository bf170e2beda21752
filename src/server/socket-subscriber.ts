// One WebSocket subscriber of a shared execution (src/server/shared-subscriptions.ts): it writes the execution's
// results, serialised once for everyone, straight to its socket as graphql-transport-ws `next` frames.
//
// Why not hand each subscriber an async iterator and let graphql-ws send: graphql-ws then runs, per subscriber and
// per result, an iterator step, its `next` hook, a JSON.stringify of the whole message and an awaited write; with
// 1,000 subscribers that per-subscriber JavaScript (promises, closures and the garbage they leave) cost more than
// the socket writes themselves (bench/fanout.ts). graphql-ws still owns the protocol: connection_init,
// subscribe, errors, ping/pong and `complete` in both directions. What it gets from `subscribe` is this object,
// an async iterator that yields nothing and ends once the subscription's last frame has been written, so its
// `complete` follows that frame, and a client's `complete` or a closed socket reaches `return()` as usual.
//
// Flow control is the one graphql-ws had (it awaited each write), without its cost. A frame goes out at once while
// the socket has nothing unsent (almost always straight to the kernel), without a write callback: Node schedules a
// process.nextTick for every synchronous write that has one, a tick per socket per result, about a tenth of the
// fan-out's CPU. What is left unsent right after is noted. When the socket already has something unsent, the
// subscription writes one more frame, with a callback, and queues further results here (as JSON strings) until it
// fires. So at most two of a subscription's frames are unsent at a time: a burst of results (a replay, several
// events published together) cannot pile up as unsent bytes on a socket whose client is reading. A client that is
// not reading is cut off (1008) when, as a frame is due, its socket has more than `maxBufferedBytes` unsent besides
// this subscription's own frame (several subscriptions on it), or when one subscription has more than `maxQueued`
// results waiting.
import type { WebSocket } from 'ws';

export interface SocketSubscriberLimits {
  /** Unsent bytes on the socket, when a frame is due, past which the client is taken to have stopped reading. */
  maxBufferedBytes: number;
  /** Results waiting for this subscription past which likewise. */
  maxQueued: number;
}

const done: IteratorReturnResult<undefined> = { done: true, value: undefined };

export class SocketSubscriber implements AsyncIterableIterator<never> {
  /** `{"id":…,"type":"next","payload":` for this subscription; a frame is this + result JSON + `}`. */
  private readonly framePrefix: string;
  /** Results waiting, oldest at `head` (null when none: the common case costs no array). */
  private queue: string[] | null = null;
  private head = 0;
  /**
   * A frame written with a callback has not reached the kernel yet, or graphql-ws has not started reading this
   * iterator (it must know the subscription before frames for it go out): results queue.
   */
  private busy = true;
  /** Unsent bytes right after this subscription's last frame written without a callback: at most that much is its own. */
  private ownUnsent = 0;
  private started = false;
  /** The execution has no more results. */
  private ended = false;
  /** Left the execution (complete, closed socket, cut off): nothing more is written. */
  private gone = false;
  private leaveExecution: (() => void) | null = null;
  private finish: ((result: IteratorReturnResult<undefined>) => void) | null = null;
  private finished: Promise<IteratorReturnResult<undefined>> | null = null;

  constructor(
    private readonly socket: WebSocket,
    id: string,
    private readonly limits: SocketSubscriberLimits,
    /** Called once when the client is cut off for not reading; closes the socket. */
    private readonly onTooSlow: (unsentBytes: number) => void,
  ) {
    this.framePrefix = `{"id":${JSON.stringify(id)},"type":"next","payload":`;
  }

  /** How to leave the execution this subscriber has joined. */
  attach(leave: () => void): void {
    if (this.gone) leave();
    else this.leaveExecution = leave;
  }

  // ------------------------------------------------------------------------------ from the shared execution

  /** The next result (an ExecutionResult as JSON). */
  deliver(json: string): void {
    if (this.gone) return;
    if (!this.busy && !this.queue) return this.write(json);
    const queue = (this.queue ??= []);
    if (queue.length - this.head >= this.limits.maxQueued) this.cutOff(this.socket.bufferedAmount);
    else queue.push(json);
  }

  /** No more results: once everything is written, graphql-ws sends `complete`. */
  end(): void {
    this.ended = true;
    if (!this.busy && !this.queue) this.finish?.(done);
  }

  // ------------------------------------------------------------------------------------------ for graphql-ws

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** graphql-ws reads the subscription: frames may go out now. Settles when the subscription is over. */
  next(): Promise<IteratorResult<never>> {
    if (!this.finished) this.finished = new Promise((resolve) => (this.finish = resolve));
    if (!this.started) {
      this.started = true;
      this.busy = false;
      this.writeQueued();
    }
    return this.finished;
  }

  /** The client sent `complete`, or the socket closed. */
  return(): Promise<IteratorResult<never>> {
    this.leave();
    this.finish?.(done);
    return Promise.resolve(done);
  }

  // ---------------------------------------------------------------------------------------------- internals

  private write(json: string): void {
    // Closing (revoked, cut off, client gone): graphql-ws will end this subscription; `ws` would only count
    // the bytes of a frame sent now.
    if (this.socket.readyState !== this.socket.OPEN) return;
    const unsent = this.socket.bufferedAmount;
    if (unsent === 0) {
      this.socket.send(this.framePrefix + json + '}');
      this.ownUnsent = this.socket.bufferedAmount;
      return;
    }
    // Its own previous frame may be what is unsent: that alone does not make the client too slow.
    if (unsent - this.ownUnsent > this.limits.maxBufferedBytes) return this.cutOff(unsent);
    this.busy = true;
    this.socket.send(this.framePrefix + json + '}', this.written);
  }

  /** Queued results, while they can be written; the end once none are left. */
  private writeQueued(): void {
    while (this.queue && !this.busy && !this.gone) {
      const queue = this.queue;
      const json = queue[this.head++]!;
      if (this.head === queue.length) {
        this.queue = null;
        this.head = 0;
      }
      this.write(json);
    }
    if (!this.queue && !this.busy && this.ended) this.finish?.(done);
  }

  /** A frame written with a callback has reached the kernel, and every frame before it. */
  private readonly written = (error?: Error | null): void => {
    this.busy = false;
    this.ownUnsent = 0;
    if (this.gone || error) return; // an error: the socket is gone, and graphql-ws calls return()
    this.writeQueued();
  };

  private leave(): void {
    if (this.gone) return;
    this.gone = true;
    this.queue = null;
    const leave = this.leaveExecution;
    this.leaveExecution = null;
    leave?.();
  }

  private cutOff(unsentBytes: number): void {
    this.leave();
    this.onTooSlow(unsentBytes);
  }
}
