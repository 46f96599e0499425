/* #if arithmetic is unsigned as soon as one operand is (C11 6.10.1):
   each test below is true for the compiler, so its header is read. */
#define LIMIT 10u
#define N -1
#if 2U - 3 > 0 && __has_include("wrap.h")
#include "wrap.h"
#else
const char *wrap = "default";
#endif
#if (0 ? 1u : -1) > 0
#include "ternary.h"
#endif
#if -1 / 2u > 0
#include "divide.h"
#endif
#if !(N < LIMIT)
#include "compare.h"
#endif
#if (1u << 63) > 0 && -1 >> 63 == -1 && 18446744073709551615 == -1
#include "shift.h"
#endif
int main(void) { return 0; }
