/**
 * Stages in one JSON file, DATA_DIR/stage-server/stages.json. Writes are atomic (tmp file, fsync, rename, fsync of
 * the directory) and serialised, so a kill -9 at any instant leaves either the old list or the new one.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { StageIdSchema } from '@stagecast/protocol';
import { z } from 'zod';
import type { StageRecord, StageStore } from './types.js';

const FileSchema = z.object({
  version: z.literal(1),
  stages: z.array(
    z.object({
      stageId: StageIdSchema,
      name: z.string(),
      tags: z.record(z.string(), z.string()),
      createdAt: z.string(),
    }),
  ),
});

export function stagesFilePath(dataDir: string): string {
  return join(dataDir, 'stage-server', 'stages.json');
}

export class FileStageStore implements StageStore {
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly path: string) {}

  async load(): Promise<StageRecord[]> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    // A file we cannot read is not silently replaced by an empty list: that would forget stages that exist.
    const parsed = FileSchema.safeParse(JSON.parse(text));
    if (!parsed.success) throw new Error(`${this.path} is not a valid stage list: ${parsed.error.message}`);
    return parsed.data.stages;
  }

  save(stages: readonly StageRecord[]): Promise<void> {
    const body = JSON.stringify({ version: 1, stages }, null, 2) + '\n';
    const run = this.chain.then(() => this.write(body));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async write(body: string): Promise<void> {
    const dir = dirname(this.path);
    await mkdir(dir, { recursive: true });
    const tmp = `${this.path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(body, 'utf8');
      await fh.sync();
    } catch (e) {
      await fh.close();
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
    await fh.close();
    await rename(tmp, this.path);
    // The rename itself is durable only once the directory entry is on disk.
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }
}
