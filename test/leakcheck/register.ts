/*
 * test/leakcheck/register.ts - `node --import ./dist/test/leakcheck/register.js
 * suite.test.js` runs the suite with the teardown leak check (./uvu.ts).
 */
import { register } from 'node:module';

register('./loader.js', import.meta.url);
