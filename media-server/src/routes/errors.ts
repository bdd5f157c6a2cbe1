/** Typed errors → status + {error:{code,message}}: the one mapping every app shares (@stagecast/service). */
export { sendError } from '@stagecast/service';
