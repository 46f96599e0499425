#if 0
#include "never_exists.h"
#endif
#ifdef __linux__
#include "linux.h"
#else
#include "other.h"
#endif
#if defined(__GNUC__) && __GNUC__ >= 4
#include "gnu.h"
#elif 1
#include "old.h"
#endif
#include <stdio.h>
#if SOMETHING_FROM_NOWHERE
#include "maybe.h"
#endif
int main(void) { printf("%d\n", LINUX + GNU); return 0; }
