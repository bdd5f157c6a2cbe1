export * from './ids.js';
export * from './errors.js';
export * from './api.js';
export * from './ws.js';
export * from './token.js';
export * from './stage-server.js';
export * from './headers.js';
