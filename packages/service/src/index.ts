export * from './auth.js';
export * from './http-errors.js';
export * from './log-format.js';
export * from './logger.js';
export * from './participant-token.js';
export * from './process.js';
export * from './metrics-guard.js';
export * from './timer-task.js';
