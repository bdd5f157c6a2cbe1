/**
 * IVS Real-Time playback with Amazon's Web Broadcast SDK, loaded from its official CDN only when a viewer is given
 * an IVS stage (local stages never load it). Subscribes to every publisher's audio and video; publishes nothing.
 */
const SDK_URL = 'https://web-broadcast.live-video.net/1.32.0/amazon-ivs-web-broadcast.js';

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
  loading ??= new Promise((resolve, reject) => {
    const s = document.createElement('script');
    s.src = SDK_URL;
    s.async = true;
    s.onload = () => resolve((window as unknown as { IVSBroadcastClient: IvsSdk }).IVSBroadcastClient);
    s.onerror = () => {
      loading = undefined;
      reject(new Error('could not load the IVS Web Broadcast SDK'));
    };
    document.head.append(s);
  });
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
