/**
 * IVS Real-Time playback with Amazon's Web Broadcast SDK, from the npm package `amazon-ivs-web-broadcast`: Vite puts
 * it in a chunk of its own, served by the API Server like our other assets (same origin, hashed name, the version the
 * lockfile pins) and loaded only when a viewer is given an IVS stage (local stages never load it). No third-party
 * script host: the page's CSP allows scripts from 'self' only. Subscribes to every publisher's audio and video.
 */

interface IvsStream {
  mediaStreamTrack: MediaStreamTrack;
}
interface IvsStage {
  on(event: string, fn: (...args: unknown[]) => void): void;
  join(): Promise<void>;
  leave(): void;
}
interface IvsSdk {
  Stage: new (token: string, strategy: object) => IvsStage;
  SubscribeType: { AUDIO_VIDEO: unknown };
  StageEvents: { STAGE_PARTICIPANT_STREAMS_ADDED: string; STAGE_CONNECTION_STATE_CHANGED: string };
}

let loading: Promise<IvsSdk> | undefined;
function loadSdk(): Promise<IvsSdk> {
  // The package is a UMD bundle (module.exports = the SDK): its namespace's default, or the namespace itself.
  loading ??= import('amazon-ivs-web-broadcast').then(
    (m) => ((m as unknown as { default?: IvsSdk }).default ?? m) as unknown as IvsSdk,
    (err: unknown) => {
      loading = undefined;
      throw new Error(`could not load the IVS Web Broadcast SDK: ${err instanceof Error ? err.message : String(err)}`);
    },
  );
  return loading;
}

export interface IvsPlayback {
  stop(): void;
}

/**
 * Joins the IVS stage with a SUBSCRIBE token; each track of its publisher goes to `onTrack` (again when the publisher
 * changes, as when the Media Server's leg rotates); `onState` gets the SDK's connection state.
 */
export async function playIvs(token: string, onTrack: (t: MediaStreamTrack) => void, onState: (s: string) => void): Promise<IvsPlayback> {
  const sdk = await loadSdk();
  const stage = new sdk.Stage(token, {
    stageStreamsToPublish: () => [],
    shouldPublishParticipant: () => false,
    shouldSubscribeToParticipant: () => sdk.SubscribeType.AUDIO_VIDEO,
  });
  stage.on(sdk.StageEvents.STAGE_PARTICIPANT_STREAMS_ADDED, (_p, streams) => {
    for (const st of streams as IvsStream[]) onTrack(st.mediaStreamTrack);
  });
  stage.on(sdk.StageEvents.STAGE_CONNECTION_STATE_CHANGED, (s) => onState(String(s)));
  await stage.join();
  return { stop: () => stage.leave() };
}
