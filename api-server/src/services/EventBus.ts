/**
 * Announcements to the Media Servers, in the order they happen. Services publish; the WebSocket edge subscribes
 * one listener per socket (and numbers the messages per connection). Delivery is synchronous, so order holds.
 */
import type { ServerMessage } from '@stagecast/protocol';

export type AnnouncementListener = (msg: ServerMessage) => void;

export class EventBus {
  private readonly listeners = new Set<AnnouncementListener>();

  subscribe(fn: AnnouncementListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  get subscriberCount(): number {
    return this.listeners.size;
  }

  publish(msg: ServerMessage): void {
    for (const fn of this.listeners) {
      try {
        fn(msg);
      } catch {
        // A broken listener (a dying socket) must not stop the others.
      }
    }
  }
}
