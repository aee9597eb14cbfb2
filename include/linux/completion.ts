/*
 * include/linux/completion.ts - struct completion, the type a struct field
 * names.
 *
 * Linux declares it in include/linux/completion.h. Here it is declared with
 * its name only, and its implementation (lib/locking/completion.ts)
 * completes it with its members through a `declare module` augmentation
 * beside the class: so include/ can name the type in struct fields without
 * importing lib/, and code that uses the members imports the
 * implementation, and with it the full type.
 */

/** struct completion - a one-shot event threads wait for (members: lib/locking/completion.ts). */
export interface completion { readonly name: string }
