#!/usr/bin/env node
// Runs the TypeScript sources through tsx so the installed command and `npm start` are the same code.
import { register } from "tsx/esm/api";

register();
await import("../src/cli.ts");
