#!/usr/bin/env node
// The `stagecast-loadtest` command (package.json "bin"): the tool is TypeScript, run through tsx (a root dependency).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./cli.ts');
process.exitCode = await main(process.argv.slice(2));
