/** The MediaPlane on packages/rtc: its Router (with its own 1-s report timer) and its WHIP / WHEP endpoints. */
import { Router, WhepEndpoint, WhipEndpoint } from '@stagecast/rtc';
import type { MediaPlane, MediaRouter } from './media-plane.js';

export function createRtcPlane(): MediaPlane {
  return {
    createRouter(): MediaRouter {
      const router = new Router();
      router.startTimer(1000); // sender/receiver reports, bitrate; cleared by router.close()
      return router;
    },
    // The room checks tokens before handle(), so the endpoints get no authorize callback.
    createWhipEndpoint: (o) => new WhipEndpoint(o),
    createWhepEndpoint: (o) => new WhepEndpoint(o),
  };
}
