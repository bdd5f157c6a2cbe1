/** Participant token claims: the ones IVS uses for self-signed ES384 tokens. */
import { z } from 'zod';

export const CapabilitiesSchema = z.object({ allow_publish: z.boolean(), allow_subscribe: z.boolean() });
export type Capabilities = z.infer<typeof CapabilitiesSchema>;

export const ParticipantClaimsSchema = z.object({
  exp: z.number().int(),
  iat: z.number().int(),
  jti: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
  resource: z.string(),
  topic: z.string(),
  whip_url: z.string(),
  events_url: z.string().optional(),
  capabilities: CapabilitiesSchema,
  user_id: z.string().max(128).optional(),
  attributes: z.record(z.string(), z.string()).optional(),
  version: z.literal('1.0'),
});
export type ParticipantClaims = z.infer<typeof ParticipantClaimsSchema>;

export type Capability = 'publish' | 'subscribe';
export const TOKEN_ALG = 'ES384' as const;
