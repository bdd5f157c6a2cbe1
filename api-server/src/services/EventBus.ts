/**
 * Announcements to the Media Servers, in the order they happen. Services publish; the WebSocket edge subscribes
 * one listener per socket (and numbers the messages per connection). Delivery is synchronous, so order holds.
 * With several API Servers a relay (RedisAnnouncementRelay) carries what one publishes to the others, which
 * deliver it to their own sockets; when announcements may have been missed (the relay's link was cut), resync()
 * tells the edge to make its Media Servers sync again.
 */
import type { ServerMessage } from '@stagecast/protocol';

export type AnnouncementListener = (msg: ServerMessage) => void;

export class EventBus {
  private readonly listeners = new Set<AnnouncementListener>();
  private readonly resyncListeners = new Set<() => void>();
  private relay: AnnouncementListener | undefined;

  subscribe(fn: AnnouncementListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  get subscriberCount(): number {
    return this.listeners.size;
  }

  /** Where this API Server's announcements go besides its own sockets (the other API Servers); undefined: nowhere. */
  setRelay(fn: AnnouncementListener | undefined): void {
    this.relay = fn;
  }

  publish(msg: ServerMessage): void {
    this.deliver(msg);
    this.relay?.(msg);
  }

  /** An announcement another API Server published: to our own listeners only (never relayed back). */
  deliver(msg: ServerMessage): void {
    for (const fn of this.listeners) {
      try {
        fn(msg);
      } catch {
        // A broken listener (a dying socket) must not stop the others.
      }
    }
  }

  onResync(fn: () => void): () => void {
    this.resyncListeners.add(fn);
    return () => this.resyncListeners.delete(fn);
  }

  /** Announcements may have been missed: every listener's client should sync everything again. */
  resync(): void {
    for (const fn of this.resyncListeners) {
      try {
        fn();
      } catch {
        // as above
      }
    }
  }
}
