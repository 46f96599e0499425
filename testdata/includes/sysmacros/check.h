#ifndef CHECK_H
#define CHECK_H

/* Defined only by a system header (<stdio.h>). */
#ifdef EOF
#include "eof.h"
#endif

/* Defined by a system header only under a condition (<features.h>
 * defines __USE_GNU when _GNU_SOURCE is defined). */
#ifdef __USE_GNU
#include "gnu.h"
#endif

/* Undefined by a system header. */
#ifndef __need_NULL
#include "undone.h"
#endif

/* Given on the command line, redefined by a system header (<features.h>
 * sets _POSIX_C_SOURCE to 200809L under _GNU_SOURCE). */
#if _POSIX_C_SOURCE >= 200809L
#include "posix2008.h"
#endif

/* Defined nowhere: the compiler skips this, and so does the analysis. */
#ifdef PROJECT_NEVER_DEFINED
#include "never.h"
#endif

#endif
