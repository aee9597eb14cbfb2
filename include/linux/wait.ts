/*
 * include/linux/wait.ts - struct wait_queue_head, the type a struct field names.
 *
 * Linux declares it in include/linux/wait.h. Here it is declared with its name
 * only, and its implementation (lib/locking/wait.ts) completes it with its
 * members through a `declare module` augmentation beside the class: so
 * include/ can name the type in struct fields without importing lib/, and
 * code that uses the members imports the implementation, and with it the
 * full type.
 */

/** struct wait_queue_head - threads sleeping for an event (members: lib/locking/wait.ts). */
export interface wait_queue_head { readonly name: string }
