/* A system header (in the --sysroot directory) that writes macros the
 * project then tests. */
#ifndef LIB_H
#define LIB_H
#define LIB_PLAIN 1
#ifdef WANT_EXTRA
#define LIB_EXTRA 1
#endif
#undef FROM_CMDLINE
#define FROM_CMDLINE 2
#undef PROJ_UNDONE
#pragma pop_macro("PROJ_POPPED")
#include <lib_more.h>
#endif
