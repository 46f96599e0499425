#if __has_include("opt.h")
#include "opt.h"
#endif
#if __has_include(<no_such_header_anywhere.h>)
#include <no_such_header_anywhere.h>
#else
#include "fallback.h"
#endif
int main(void) { return OPT + FB; }
