/*
 * include/linux/interval_tree.ts - struct interval_tree_node, as in
 * include/linux/interval_tree.h; the tree itself is lib/interval_tree.ts.
 */

/** struct interval_tree_node - embed one in an object to put it in a tree. */
export interface interval_tree_node {
  start: number;     /* first address covered */
  last: number;      /* last address covered (inclusive) */
}
