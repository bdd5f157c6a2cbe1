import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { CreateStageResponseSchema, ListStagesResponseSchema } from '@stagecast/protocol';
import { admin, startProcess, tempDir, type ChildServer } from './helpers.js';

test('stages survive kill -9 of the stage server process: a restart lists the same stages', async (t) => {
  const dir = await tempDir();
  const children: ChildServer[] = [];
  t.after(async () => {
    await Promise.all(children.map((c) => c.kill('SIGKILL')));
    await dir.remove();
  });

  const first = await startProcess({ DATA_DIR: dir.path });
  children.push(first);
  const api1 = admin(first.base);
  const created = [];
  for (const name of ['a', 'b', 'c']) {
    const res = await api1.create({ name, tags: { n: name } });
    assert.equal(res.status, 201);
    created.push(CreateStageResponseSchema.parse(await res.json()).stage);
  }
  assert.equal((await api1.delete(created[1]!.stageId)).status, 204);
  const kept = [created[0]!, created[2]!];

  // The 201 / 204 above are only sent once the list is on disk.
  const onDisk = JSON.parse(await readFile(join(dir.path, 'stage-server', 'stages.json'), 'utf8')) as { stages: Array<{ stageId: string }> };
  assert.deepEqual(onDisk.stages.map((s) => s.stageId), kept.map((s) => s.stageId));

  const exit = await first.kill('SIGKILL');
  assert.equal(exit.signal, 'SIGKILL');

  const second = await startProcess({ DATA_DIR: dir.path });
  children.push(second);
  const { stages } = ListStagesResponseSchema.parse(await (await admin(second.base).list()).json());
  // Same ids, names, tags and creation times; URLs follow the new process's public URL (a new port here).
  const strip = (s: (typeof stages)[number]) => ({ stageId: s.stageId, stageArn: s.stageArn, name: s.name, tags: s.tags, createdAt: s.createdAt });
  assert.deepEqual(stages.map(strip), kept.map(strip));
  for (const s of stages) assert.equal(s.whipUrl, `${second.base}/stages/${s.stageId}/whip`);
  assert.equal((await admin(second.base).get(kept[0]!.stageId)).status, 200);
  // No leftover temporary files from the atomic writes.
  assert.deepEqual(await readdir(join(dir.path, 'stage-server')), ['stages.json']);
});

test('SIGTERM stops the stage server gracefully: exit code 0 after server.stopped', async (t) => {
  const dir = await tempDir();
  const child = await startProcess({ DATA_DIR: dir.path });
  t.after(async () => {
    await child.kill('SIGKILL');
    await dir.remove();
  });
  assert.equal((await admin(child.base).create()).status, 201);
  const exit = await child.kill('SIGTERM');
  assert.equal(exit.code, 0, child.output());
  assert.match(child.output(), /"msg":"server.stopped"/);
});

test('a missing STAGE_SERVER_SECRET fails fast naming the variable', async (t) => {
  const dir = await tempDir();
  t.after(() => dir.remove());
  await assert.rejects(startProcess({ DATA_DIR: dir.path, STAGE_SERVER_SECRET: '' }, 15_000), /STAGE_SERVER_SECRET/);
});
