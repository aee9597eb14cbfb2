/*
 * include/linux/fault-inject.ts - the fault-injection attribute.
 *
 * Models include/linux/fault-inject.h and the knobs documented in Linux's
 * Documentation/fault-injection/fault-injection.rst. A struct fault_attr
 * decides, each time a named failure site asks should_fail(attr, size)
 * (lib/fault-inject.ts), whether this call fails. The tests, in the order
 * should_fail_ex() applies them:
 *
 *   probability == 0          never fail (the attribute is off)
 *   times == 0                the failure budget is used up (-1: no limit)
 *   space > size              let @size bytes through first (space -= size)
 *   interval > 1              only every interval-th call that got here may
 *                             fail (count is the running call number)
 *   random(100) >= probability  this call is lucky
 *
 * and a call that passes all of them fails: times is decremented (unless
 * -1) and, with verbose, "FAULT_INJECTION: forcing a failure." is logged.
 *
 * A sweep fails the N-th call of a site exactly once with
 * interval=N, probability=100, space=0, times=1 (the boot-parameter form
 * "N,100,0,1" that setup_fault_attr() parses).
 *
 * Added for the simulator (Linux has no such fields): @name, the site's
 * debugfs directory name, and two counters a test reads, @hits (every
 * should_fail() call) and @failures (calls that failed).
 * Not modelled: task_filter and make-it-fail, the require/reject
 * stack-trace address ranges, the ratelimit of the verbose message,
 * fail_nth of /proc/self/task/<tid>/fail-nth.
 */

/** should_fail_ex() flag: fail without the verbose message (e.g. __GFP_NOWARN). */
export const FAULT_NOWARN = 1 << 0;

/**
 * struct fault_attr - when a failure site fails.
 * All fields are written by the test or the command line before the
 * workload runs and by should_fail_ex(); the simulator has one CPU at a
 * time, so Linux's atomics are plain numbers here.
 */
export interface fault_attr {
  /* the site's name, as its debugfs directory (fail_page_alloc, ...) */
  readonly name: string;
  /* percent of the calls that pass the other tests to fail, 0..100 */
  probability: number;
  /* only every interval-th call may fail; 1: every call; >= 1 */
  interval: number;
  /* failures left; -1: no limit; 0: no more failures */
  times: number;
  /* size (bytes or pages, per site) to let through before failing */
  space: number;
  /* 0: quiet; 1 or 2: log each forced failure (no stack trace here) */
  verbose: number;
  /* calls counted for @interval */
  count: number;
  /* simulator counters: should_fail() calls, and the calls that failed */
  hits: number;
  failures: number;
}

/**
 * FAULT_ATTR_INITIALIZER() - an attribute that never fails: probability
 * 0, interval 1, times 1, space 0, verbose 2 (Linux's initializer).
 * @name: the site's name.
 */
export function FAULT_ATTR_INITIALIZER(name: string): fault_attr {
  return { name, probability: 0, interval: 1, times: 1, space: 0, verbose: 2, count: 0, hits: 0, failures: 0 };
}

/** DECLARE_FAULT_ATTR() - declare a site's attribute, off until configured. */
export const DECLARE_FAULT_ATTR = FAULT_ATTR_INITIALIZER;

/**
 * struct fail_page_alloc_attr - fail_page_alloc's extra knobs
 * (mm/fail_page_alloc.c; debugfs ignore-gfp-highmem, ignore-gfp-wait,
 * min-order). With Linux's defaults an order-0 user allocation never
 * fails: a test that sweeps user pages turns the first two off and sets
 * min_order to 0.
 */
export interface fail_page_alloc_attr {
  attr: fault_attr;
  /* do not fail __GFP_HIGHMEM allocations (default true) */
  ignore_gfp_highmem: boolean;
  /* do not fail allocations that may reclaim directly (default true) */
  ignore_gfp_reclaim: boolean;
  /* do not fail allocations of a smaller order (default 1) */
  min_order: number;
}
