/*
 * include/linux/spinlock_types.ts - spinlock_t, the type a struct field names.
 *
 * Linux declares it in include/linux/spinlock_types.h. Here it is declared with its name
 * only, and its implementation (lib/locking/spinlock.ts) completes it with its
 * members through a `declare module` augmentation beside the class: so
 * include/ can name the type in struct fields without importing lib/, and
 * code that uses the members imports the implementation, and with it the
 * full type.
 */

/** spinlock_t - a spinlock (members: lib/locking/spinlock.ts). */
export interface spinlock_t { readonly name: string }
