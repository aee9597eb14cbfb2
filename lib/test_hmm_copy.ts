/*
 * lib/test_hmm_copy.ts - the page copies of one window of a dmirror
 * migration (lib/test_hmm_migrate.ts), queued and done at the window's
 * end in source-frame order.
 *
 * Linux's dmirror copies each page in its allocation loop
 * (dmirror_migrate_alloc_and_copy(): copy_highpage(), one page or one
 * folio at a time, in the order of src[]). The model queues those copies
 * and does them before the core's next step (migrate_vma_pages(), or the
 * loop's fallback that copies at once). Model split (session 9, mig4k2,
 * replacing the copy runs of struct copy_run; Documentation/vm/hmm.txt
 * Part 17): the same bytes in the same places, at a lower host cost:
 *
 *   queued, in src[] order           done, by source frame
 *   to 900 <- from 41                to 903 <- from 40      1 page
 *   to 901 <- from 77  \ merged       to 900 <- from 41      1 page
 *   to 902 <- from 78  / when queued  to 901 <- from 77      2 pages
 *   to 903 <- from 40
 *
 *  - pages whose source and destination frames both follow the previous
 *    entry's become one copy_highpages() (the host's per-call cost of a
 *    typed-array copy paid once per run);
 *  - the copies read their sources in ascending frame order. The buddy
 *    allocator hands order-0 pages out last-freed-first, so after a few
 *    round trips the frames of a window are scattered (copy runs of 29
 *    pages on average in the bench's first 64 MiB round trip, 4 in the
 *    twelfth), and copying them in src[] order reads host memory in a
 *    scattered order: the twelfth round trip's copies replayed took 1.33x
 *    the time of the same copies sorted by source frame;
 *  - the sort (native, of a Float64Array) and the merge are over at most
 *    PTRS_PER_PTE entries per window.
 *
 * Why the order cannot be seen: every queued destination is a page the
 * loop allocated, locked, on no LRU list and in no page table until
 * migrate_vma_pages() installs it; every queued source is locked and
 * unmapped behind a migration entry (system memory) or device memory
 * the driver owns; so nothing reads a destination or writes a source
 * before the flush, also across a sleep in an allocation of the loop.
 * The fail_dev_copy decision and the copy's virtual time are taken per
 * page when it is queued, as Linux's loop would take them; a window
 * that fails drops its queue with the destinations it releases.
 *
 * dmirror_params.copy_queue (TEST ONLY, lib/test_hmm_devmem.ts) off
 * copies each page at once, as Linux's loop does; the test
 * (test/lib/test_hmm_migrate.test.ts) runs four round trips both ways
 * and compares bytes, page tables, struct pages and counters.
 */
import { pfn_to_page_new } from '../include/asm-generic/memory_model.js';
import { PTRS_PER_PTE } from '../include/linux/mm.js';
import { copy_highpages } from '../mm/page_alloc.js';

/**
 * struct copy_queue - the copies of one window: entry k copies nr[k]
 * pages of consecutive frames from frame from[k] to frame to[k]; key[k]
 * is from[k] * PTRS_PER_PTE + k (sorting the keys sorts by source frame
 * and keeps the entry's index). Entries that continue the last one on
 * both sides are merged when queued.
 */
export interface copy_queue {
  readonly to: Float64Array;
  readonly from: Float64Array;
  readonly nr: Float64Array;
  readonly key: Float64Array;
  len: number;
}

/* queues not in use, for the next window (migrations nest: a fault inside one may migrate another page) */
const spare: copy_queue[] = [];

/**
 * copy_queue_get() - an empty queue for one window. No Linux twin (the
 * model split of the file header).
 * Context: any. Return: the queue; give it back with copy_queue_put().
 */
export function copy_queue_get(): copy_queue {
  const q = spare.pop();
  if (q !== undefined) return q;
  const n = PTRS_PER_PTE;
  return { to: new Float64Array(n), from: new Float64Array(n), nr: new Float64Array(n), key: new Float64Array(n), len: 0 };
}

/**
 * copy_queue_put() - give back a queue, dropping the copies still in it
 * (a window that failed: its destinations are released). No Linux twin.
 * Context: any.
 */
export function copy_queue_put(q: copy_queue): void {
  q.len = 0;
  spare.push(q);
}

/**
 * copy_queue_add() - queue the copy of @nr pages of consecutive frames
 * from frame @from_pfn to frame @to_pfn (what Linux's loop does at once
 * with copy_highpage() or folio_copy()). No Linux twin.
 * Context: any; does not sleep.
 */
export function copy_queue_add(q: copy_queue, to_pfn: number, from_pfn: number, nr: number): void {
  const last = q.len - 1;
  if (last >= 0 && to_pfn === q.to[last] + q.nr[last] && from_pfn === q.from[last] + q.nr[last]) {
    q.nr[last] += nr;
    return;
  }
  if (q.len === q.to.length) copy_queue_flush(q);       /* cannot happen within one window; stay correct anyway */
  const k = q.len++;
  q.to[k] = to_pfn;
  q.from[k] = from_pfn;
  q.nr[k] = nr;
  q.key[k] = from_pfn * PTRS_PER_PTE + k;
}

/**
 * copy_queue_flush() - do the queued copies, in ascending source frame
 * order, entries continuing each other on both sides as one
 * copy_highpages(); the queue is empty afterwards. No Linux twin (the
 * copy_highpage() calls of Linux's loop, reordered: see the file header).
 * Context: any; does not sleep.
 */
export function copy_queue_flush(q: copy_queue): void {
  const n = q.len;
  if (n === 0) return;
  q.len = 0;
  const key = q.key.subarray(0, n).sort();
  let to = -1, from = -1, nr = 0;
  for (let j = 0; j < n; j++) {
    const k = key[j] % PTRS_PER_PTE;
    if (nr > 0 && q.to[k] === to + nr && q.from[k] === from + nr) {
      nr += q.nr[k];
      continue;
    }
    if (nr > 0) copy_highpages(pfn_to_page_new(to), pfn_to_page_new(from), nr);
    to = q.to[k];
    from = q.from[k];
    nr = q.nr[k];
  }
  copy_highpages(pfn_to_page_new(to), pfn_to_page_new(from), nr);
}
