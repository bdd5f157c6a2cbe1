/**
 * What the stage server needs of an API Server when it runs alone (the fan-out bench): a JWKS to verify participant
 * tokens, and somewhere to report participant events. Mints ES384 tokens as the API Server does (ParticipantClaims).
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { API_ROUTES, TOKEN_ALG, type ParticipantClaims, type StageArn } from '@stagecast/protocol';

export interface TokenStub {
  url: string;
  token(stageArn: StageArn, capability: 'publish' | 'subscribe'): Promise<string>;
  close(): Promise<void>;
}

export async function startTokenStub(): Promise<TokenStub> {
  const keys = await generateKeyPair(TOKEN_ALG);
  const jwk = { ...(await exportJWK(keys.publicKey)), kid: 'bench', alg: TOKEN_ALG, use: 'sig' };
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === API_ROUTES.jwks) return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
    if (req.method === 'POST' && req.url === API_ROUTES.participantEvents) {
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'));
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"code":"NOT_FOUND","message":"not found"}}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    token(stageArn, capability) {
      const now = Math.floor(Date.now() / 1000);
      const claims: ParticipantClaims = {
        exp: now + 3600,
        iat: now,
        jti: randomBytes(9).toString('base64url'),
        resource: stageArn,
        topic: stageArn.slice(stageArn.lastIndexOf('/') + 1),
        whip_url: `${url}/whip`,
        capabilities: { allow_publish: capability === 'publish', allow_subscribe: capability === 'subscribe' },
        version: '1.0',
      };
      return new SignJWT({ ...claims }).setProtectedHeader({ alg: TOKEN_ALG, kid: 'bench', typ: 'JWT' }).sign(keys.privateKey);
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
