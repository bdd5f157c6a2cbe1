export * from './rtp.js';
export * from './rtcp.js';
export * from './bitreader.js';
export * from './h264.js';
export * from './h264-sps.js';
export * from './h264-inspector.js';
