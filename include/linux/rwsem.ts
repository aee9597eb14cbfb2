/*
 * include/linux/rwsem.ts - struct rw_semaphore, the type a struct field names.
 *
 * Linux declares it in include/linux/rwsem.h. Here it is declared with its name
 * only, and its implementation (lib/locking/rwsem.ts) completes it with its
 * members through a `declare module` augmentation beside the class: so
 * include/ can name the type in struct fields without importing lib/, and
 * code that uses the members imports the implementation, and with it the
 * full type.
 */

/** struct rw_semaphore - a reader-writer semaphore (members: lib/locking/rwsem.ts). */
export interface rw_semaphore { readonly name: string }
