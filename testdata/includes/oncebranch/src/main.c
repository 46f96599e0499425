/* A header first reached in a branch the include server cannot decide
   (__USE_GNU: a system header may define it) is read again where it is
   included for certain: the first walk must not use up its #pragma once
   or its guard. */
#include <stdio.h>
#ifdef __USE_GNU
#define SEL 1
#include "h2.h"
#include "guarded.h"
#endif
#undef SEL
#define SEL 2
#include "h2.h"
#define WANT_C
#include "guarded.h"
int main(void) { return 0; }
