/* A header included under a branch the include server cannot decide
 * (here false for gcc) leaves its guard undecided after the branch: the
 * fallback the real compile takes must be found too. */
#include <unistd.h>
#if defined(_POSIX_VERSION) && _POSIX_VERSION < 0
#include "config.h"
#endif
#ifndef CONFIG_H
#include "fallback.h"
#endif
int main(void) { return SETTING; }
