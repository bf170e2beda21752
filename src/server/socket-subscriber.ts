// One WebSocket subscriber of a shared execution (src/server/shared-subscriptions.ts): it writes the execution's
// results, serialised once for everyone, straight to its socket as graphql-transport-ws `next` frames.
//
// Why not hand each subscriber an async iterator and let graphql-ws send: graphql-ws then runs, per subscriber and
// per result, an iterator step, its `next` hook, a JSON.stringify of the whole message and an awaited write
// callback; with 1,000 subscribers that per-subscriber JavaScript cost more than the socket writes themselves
// (bench/fanout.ts). graphql-ws still owns the protocol: connection_init, subscribe, errors, ping/pong and
// `complete` in both directions. What it gets from `subscribe` is this object, an async iterator that yields
// nothing and ends when the subscription does, so it sends `complete` after the last frame written here (`ws`
// keeps writes in order), and a client's `complete` or a closed socket reaches `return()` as usual.
import type { WebSocket } from 'ws';

export interface SocketSubscriberLimits {
  /** Unsent bytes on the socket past which the client is taken to have stopped reading. */
  maxBufferedBytes: number;
  /** Results waiting in this subscriber's own queue (catch-up, or before graphql-ws starts it) past which likewise. */
  maxQueued: number;
}

/**
 * During catch-up, frames are written while the socket has less than this unsent, then the rest once that last
 * frame has reached the kernel: a long replay goes out as fast as the client reads it, without first piling up
 * in memory as unsent bytes (which would count against `maxBufferedBytes`).
 */
const catchUpHighWater = 64 * 1024;

const done: IteratorReturnResult<undefined> = { done: true, value: undefined };

export class SocketSubscriber implements AsyncIterableIterator<never> {
  /** `{"id":…,"type":"next","payload":` for this subscription; a frame is this + result JSON + `}`. */
  private readonly framePrefix: string;
  /**
   * Results not written yet: the catch-up, and whatever arrives before graphql-ws starts reading this iterator
   * (it must know the subscription before its frames go out). Null once everything is written: then results
   * go straight to the socket.
   */
  private queue: string[] | null = [];
  private queueHead = 0;
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

  /**
   * One result (an ExecutionResult as JSON). Returns the socket's unsent bytes, so the execution can let the
   * event loop write (and in-process readers read) before it produces more.
   */
  deliver(json: string): number {
    if (this.gone) return 0;
    if (this.queue) {
      if (this.queue.length - this.queueHead >= this.limits.maxQueued) this.cutOff(this.socket.bufferedAmount);
      else this.queue.push(json);
      return 0;
    }
    // Closing (revoked, cut off, client gone): graphql-ws will end this subscription; `ws` would only count
    // the bytes of a frame sent now.
    if (this.socket.readyState !== this.socket.OPEN) return 0;
    const unsent = this.socket.bufferedAmount;
    if (unsent > this.limits.maxBufferedBytes) {
      this.cutOff(unsent);
      return 0;
    }
    this.socket.send(this.framePrefix + json + '}');
    return unsent;
  }

  /** No more results: once everything is written, graphql-ws sends `complete`. */
  end(): void {
    this.ended = true;
    if (this.started && !this.queue) this.finish?.(done);
  }

  // ------------------------------------------------------------------------------------------ for graphql-ws

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** graphql-ws reads the subscription: it knows the id now, so frames may go out. Settles when it is over. */
  next(): Promise<IteratorResult<never>> {
    if (!this.finished) this.finished = new Promise((resolve) => (this.finish = resolve));
    if (!this.started) {
      this.started = true;
      this.writeQueue();
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

  private readonly writeQueue = (error?: Error | null): void => {
    const queue = this.queue;
    if (!queue || this.gone || error) return; // an error: the socket is gone, and graphql-ws calls return()
    while (this.queueHead < queue.length) {
      if (this.socket.readyState !== this.socket.OPEN) return;
      const frame = this.framePrefix + queue[this.queueHead++]! + '}';
      if (this.socket.bufferedAmount > catchUpHighWater) {
        // The rest once this one has reached the kernel (a client that does not read waits here, queueing
        // further results until maxQueued).
        this.socket.send(frame, this.writeQueue);
        return;
      }
      this.socket.send(frame);
    }
    this.queue = null;
    this.queueHead = 0;
    if (this.ended) this.finish?.(done);
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
