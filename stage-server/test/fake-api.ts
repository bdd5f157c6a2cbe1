/**
 * A fake API Server for stage-server tests: serves a JWKS of a key pair generated here, mints participant tokens
 * with it, and records the participant events the stage server reports.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import {
  API_ROUTES,
  ParticipantEventsRequestSchema,
  type ParticipantClaims,
  type ParticipantEvent,
  type StageArn,
} from '@stagecast/protocol';

export interface FakeApi {
  url: string;
  events: ParticipantEvent[];
  /** The Authorization headers the participant events came with. */
  eventAuth: string[];
  token(o: { stageArn: StageArn; capability: 'publish' | 'subscribe'; jti?: string; expiresInSec?: number }): Promise<string>;
  /** A token signed with a key that is not in the JWKS. */
  forgedToken(o: { stageArn: StageArn; capability: 'publish' | 'subscribe' }): Promise<string>;
  close(): Promise<void>;
}

export async function startFakeApi(): Promise<FakeApi> {
  const signing = await generateKeyPair('ES384');
  const stranger = await generateKeyPair('ES384');
  const jwk = { ...(await exportJWK(signing.publicKey)), kid: 'fake-api-key', alg: 'ES384', use: 'sig' };
  const events: ParticipantEvent[] = [];
  const eventAuth: string[] = [];
  const server: Server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === API_ROUTES.jwks) {
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
    }
    if (req.method === 'POST' && req.url === API_ROUTES.participantEvents) {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        eventAuth.push(req.headers.authorization ?? '');
        events.push(...ParticipantEventsRequestSchema.parse(JSON.parse(body)).events);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      });
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const sign = (key: CryptoKey, o: { stageArn: StageArn; capability: 'publish' | 'subscribe'; jti?: string; expiresInSec?: number }) => {
    const now = Math.floor(Date.now() / 1000);
    const claims: ParticipantClaims = {
      exp: now + (o.expiresInSec ?? 600),
      iat: now - (o.expiresInSec !== undefined && o.expiresInSec < 0 ? 600 : 0),
      jti: o.jti ?? randomBytes(9).toString('base64url'),
      resource: o.stageArn,
      topic: o.stageArn.slice(o.stageArn.lastIndexOf('/') + 1),
      whip_url: 'http://127.0.0.1/whip',
      capabilities: { allow_publish: o.capability === 'publish', allow_subscribe: o.capability === 'subscribe' },
      version: '1.0',
    };
    return new SignJWT({ ...claims }).setProtectedHeader({ alg: 'ES384', kid: 'fake-api-key', typ: 'JWT' }).sign(key);
  };

  return {
    url,
    events,
    eventAuth,
    token: (o) => sign(signing.privateKey, o),
    forgedToken: (o) => sign(stranger.privateKey, o),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
