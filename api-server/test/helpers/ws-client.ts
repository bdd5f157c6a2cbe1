/** A real `ws` client of the Media Server WebSocket that records every message it receives. */
import WebSocket from 'ws';
import { ServerMessageSchema, type ServerMessage } from '@stagecast/protocol';
import { SECRETS } from './api.js';

export interface RecordingSocket {
  messages: ServerMessage[];
  close(): void;
}

export async function connectMediaSocket(wsUrl: string): Promise<RecordingSocket> {
  const ws = new WebSocket(`${wsUrl}/ws?type=media-server&serverId=test`, { headers: { authorization: `Bearer ${SECRETS.media}` } });
  const messages: ServerMessage[] = [];
  ws.on('message', (data) => messages.push(ServerMessageSchema.parse(JSON.parse(data.toString()))));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { messages, close: () => ws.terminate() };
}
