/*
 * test/drivers/hmm_dummy.test.ts - Glisse's 2015 dummy-driver suite
 * (tools/testing/selftests/hmm-dummy/) as uvu tests, so `npm test` runs
 * every program: the 15 at HEAD and the 7 historical ones. Each program
 * boots its own machine; a failure shows what the program printed.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { hmm_dummy_programs } from '../../tools/testing/selftests/hmm-dummy/main.js';
import { hmm_dummy_run } from '../../tools/testing/selftests/hmm-dummy/tests.js';

const t = suite('hmm-dummy selftests');
for (const prog of hmm_dummy_programs) {
  t(`${prog.name}${prog.historical ? ' (historical)' : ''}: ${prog.title} passes`, () => {
    const r = hmm_dummy_run(prog);
    assert.ok(r.passed, r.out.join('\n'));
  });
}
t.run();
