/*
 * Out-of-memory policy: allocation failure aborts the process through these
 * wrappers (as h2o and smtpd do). A gateway that cannot allocate a few hundred
 * bytes cannot keep any promise to its sessions, and checking every call site
 * would add thousands of untested branches. Sizes from the network are bounded
 * by limits before they reach an allocator, so input cannot trigger the abort.
 */
#ifndef WG_CORE_MEM_H
#define WG_CORE_MEM_H

#include <stddef.h>

void *wg_malloc(size_t n);
void *wg_calloc(size_t n, size_t size);
void *wg_realloc(void *p, size_t n);
char *wg_strdup(const char *s);
char *wg_strndup(const char *s, size_t n);
void *wg_memdup(const void *p, size_t n);

/* Overwrite secret material before it is freed; the compiler may not elide it. */
void wg_wipe(void *p, size_t n);

#endif
