#!/usr/bin/env node
// Entry point of the `switchyard` command; the code lives in dist/ (built by `npm run build`).
import { main } from '../dist/cli/main.js';

const code = await main(process.argv.slice(2));
if (code >= 0) process.exitCode = code;
