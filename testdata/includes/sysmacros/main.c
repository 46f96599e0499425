/* Macros that system headers define, redefine or undefine, tested in
 * project headers: none of these may be taken as undefined (or as keeping
 * the value the project gave) once a system header has been included. */

/* A built-in that -dM does not list: defined before any header. */
#ifdef __has_include
#if __has_include("early.h")
#include "early.h"
#endif
#endif

/* <stddef.h> does #undef __need_NULL. */
#define __need_NULL
#include <stddef.h>
#include <stdio.h>
#include "check.h"

int main(void) { return EARLY + EOF_SEEN + GNU_SEEN + UNDONE_SEEN + P2008_SEEN; }
