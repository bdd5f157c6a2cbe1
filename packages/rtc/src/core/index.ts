export * from './types.js';
export * from '../codec/index.js';
export { Router, type RouterOptions, type RouterEvents, type RouterStats, type SourceParams, type KeyframeEvent, type IngressCounters } from './router.js';
export { Sink, type RouterSinkStats } from './sink.js';
export { HOP_BY_HOP_EXTENSIONS } from './ext-class.js';
