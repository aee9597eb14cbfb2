/*
 * test/leakcheck/loader.ts - a Node module resolve hook: a suite's
 * `import ... from 'uvu'` gets ./uvu.js, the leak-checking uvu; the
 * wrapper's own import of 'uvu' (and uvu's of itself) get the real one.
 */
const wrapper = new URL('./uvu.js', import.meta.url).href;

type Next = (specifier: string, context: { parentURL?: string }) => Promise<{ url: string }>;

export async function resolve(specifier: string, context: { parentURL?: string }, next: Next): Promise<{ url: string }> {
  const parent = context.parentURL ?? '';
  if (specifier === 'uvu' && parent !== wrapper && parent.includes('/dist/test/') && parent.endsWith('.test.js')) {
    return { url: wrapper, shortCircuit: true } as { url: string };
  }
  return next(specifier, context);
}
