/*
 * tools/hmm-sim/resolve_hook.ts - a Node module resolve hook (registered
 * by registry.ts before a user's scenario file is imported): the bare
 * specifier 'hmm-sim' resolves to this package's scenario API when
 * ordinary resolution does not find it (a file in /tmp, outside any
 * project that installed hmm-sim).
 */
const api = new URL('./api.js', import.meta.url).href;

type next_resolve = (specifier: string, context: unknown) => Promise<{ url: string }>;

export async function resolve(specifier: string, context: unknown, next: next_resolve): Promise<{ url: string; shortCircuit?: boolean }> {
  try {
    return await next(specifier, context);
  } catch (e) {
    if (specifier === 'hmm-sim') return { url: api, shortCircuit: true };
    throw e;
  }
}
