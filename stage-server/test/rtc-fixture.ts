/**
 * A stage server in this process with the real WebRTC plane (node-datachannel, ICE on 127.0.0.1) and a fake API
 * Server, for the tests that put real peers through a stage: `start()` in before(), `stop()` in after().
 */
import nodeDataChannel from 'node-datachannel';
import { CreateStageResponseSchema, type LocalStage } from '@stagecast/protocol';
import type { StageServer } from '../src/app.js';
import { createRtcPlane } from '../src/services/rtc-plane.js';
import { startFakeApi, type FakeApi } from './fake-api.js';
import { admin, startInProcess, tempDir } from './helpers.js';

export class RtcStageFixture {
  api!: FakeApi;
  server!: StageServer;
  base = '';
  /** Run (last first) by stop(): peers a test started. */
  readonly cleanup: Array<() => Promise<void> | void> = [];
  private dir: Awaited<ReturnType<typeof tempDir>> | undefined;

  constructor(private readonly env: Record<string, string> = {}) {}

  async start(): Promise<void> {
    this.api = await startFakeApi();
    this.dir = await tempDir();
    ({ server: this.server, base: this.base } = await startInProcess(
      { DATA_DIR: this.dir.path, API_SERVER_URL: this.api.url, RTC_BIND_ADDRESS: '127.0.0.1', ...this.env },
      { plane: createRtcPlane(), reporter: { flushDelayMs: 10 } },
    ));
  }

  async stop(): Promise<void> {
    for (const c of this.cleanup.reverse()) await c();
    await this.server?.stop();
    await this.api?.close();
    await this.dir?.remove();
    // node-datachannel's threads keep the process alive until its global cleanup.
    nodeDataChannel.cleanup();
  }

  async newStage(): Promise<LocalStage> {
    return CreateStageResponseSchema.parse(await (await admin(this.base).create()).json()).stage;
  }
}
