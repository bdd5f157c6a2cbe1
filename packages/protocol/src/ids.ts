import { z } from 'zod';

/** Branded ids: a viewer id cannot be passed where a stage ARN is expected. */
export type StageArn = string & { readonly __brand: 'StageArn' };
export type StageId = string & { readonly __brand: 'StageId' };
export type ViewerId = string & { readonly __brand: 'ViewerId' };
export type ServerId = string & { readonly __brand: 'ServerId' };
export type ParticipantId = string & { readonly __brand: 'ParticipantId' };

// IVS: arn:aws:ivs:<region>:<account>:stage/<id>. Local stages use the same shape under partition "stagecast".
const STAGE_ARN_RE = /^arn:(aws|aws-cn|aws-us-gov|stagecast):ivs:[a-z0-9-]+:[0-9]{12}:stage\/[A-Za-z0-9_-]{1,64}$/;

export const StageArnSchema = z.string().regex(STAGE_ARN_RE, 'not a stage ARN').transform((s) => s as StageArn);
export const StageIdSchema = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).transform((s) => s as StageId);
export const ViewerIdSchema = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).transform((s) => s as ViewerId);
export const ServerIdSchema = z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/).transform((s) => s as ServerId);
export const ParticipantIdSchema = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).transform((s) => s as ParticipantId);

export function stageIdOf(arn: StageArn): StageId {
  return arn.slice(arn.lastIndexOf('/') + 1) as StageId;
}

export function localStageArn(stageId: string): StageArn {
  return `arn:stagecast:ivs:local:000000000000:stage/${stageId}` as StageArn;
}

export function isStageArn(s: string): s is StageArn {
  return STAGE_ARN_RE.test(s);
}
