/*
 * include/linux/mutex_types.ts - struct mutex, the type a struct field names.
 *
 * Linux declares it in include/linux/mutex_types.h. Here it is declared with its name
 * only, and its implementation (lib/locking/mutex.ts) completes it with its
 * members through a `declare module` augmentation beside the class: so
 * include/ can name the type in struct fields without importing lib/, and
 * code that uses the members imports the implementation, and with it the
 * full type.
 */

/** struct mutex - a sleeping lock (members: lib/locking/mutex.ts). */
export interface mutex { readonly name: string }
