#ifdef LIB_PLAIN
#include "plain.h"
#endif
/* Defined by the system header only under a condition. */
#if defined(LIB_EXTRA) && LIB_EXTRA
#include "extra.h"
#endif
/* A command-line macro the system header redefines. */
#if FROM_CMDLINE == 2
#include "cmdline.h"
#endif
/* A command-line macro the system header undefines. */
#ifndef PROJ_UNDONE
#include "undone.h"
#endif
/* Restored by pop_macro in the system header. */
#ifdef PROJ_POPPED
#include "popped.h"
#endif
/* Defined by a header the system header includes. */
#ifdef LIB_MORE
#include "more.h"
#endif
