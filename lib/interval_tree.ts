/*
 * lib/interval_tree.ts - a set of closed intervals [start, last] with
 * overlap queries.
 *
 * Models the interface of lib/interval_tree.c (interval_tree_insert,
 * interval_tree_remove, interval_tree_iter_first/next), which the mmu
 * interval notifiers use. Linux uses an augmented red-black tree; this
 * keeps nodes in an array sorted by start and scans from the first node
 * whose start may overlap, which is O(n) in the worst case but simple to
 * read. The number of notifiers per mm in any scenario here is small.
 */

/* struct interval_tree_node is declared in include/linux/interval_tree.ts */
import type { interval_tree_node } from '../include/linux/interval_tree.js';
export type { interval_tree_node };

/** An interval tree over nodes of type T. */
export class interval_tree<T extends interval_tree_node> {
  private nodes: T[] = [];

  /** Number of nodes. */
  get size(): number { return this.nodes.length; }

  /** interval_tree_insert() - add a node. */
  insert(n: T): void {
    let lo = 0, hi = this.nodes.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.nodes[mid].start <= n.start) lo = mid + 1; else hi = mid;
    }
    this.nodes.splice(lo, 0, n);
  }

  /** interval_tree_remove() - remove a node; returns false if it was not in the tree. */
  remove(n: T): boolean {
    const i = this.nodes.indexOf(n);
    if (i < 0) return false;
    this.nodes.splice(i, 1);
    return true;
  }

  /** Whether the node is in the tree (RB_EMPTY_NODE in Linux, inverted). */
  contains(n: T): boolean { return this.nodes.includes(n); }

  /**
   * overlapping() - every node overlapping [start, last], in start order.
   * The returned array is a snapshot: callers may insert or remove while
   * iterating it.
   */
  overlapping(start: number, last: number): T[] {
    const out: T[] = [];
    for (const n of this.nodes) {
      if (n.start > last) break;
      if (n.last >= start) out.push(n);
    }
    return out;
  }

  /** interval_tree_iter_first() - the first node overlapping [start, last], or null. */
  iter_first(start: number, last: number): T | null {
    for (const n of this.nodes) {
      if (n.start > last) break;
      if (n.last >= start) return n;
    }
    return null;
  }

  /** All nodes, in start order. */
  all(): readonly T[] { return this.nodes; }
}
