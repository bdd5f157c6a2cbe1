#!/usr/bin/env node
// The `stagecast-loadtest` command (package.json "bin"): the tool is TypeScript, run through tsx (a root dependency).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./cli.ts');
const code = await main(process.argv.slice(2));
// The run is over and its output written (stdout is synchronous on files and pipes): exit now rather than wait for
// native threads (node-datachannel's, after WHEP viewers) to wind down by themselves.
process.exit(code);
