#if __has_include("opt.h")
#include "opt.h"
#endif
#if __has_include(<no_such_header_anywhere.h>)
#include <no_such_header_anywhere.h>
#else
#include "fallback.h"
#endif
/* Probed, never included: the server must find it too. */
#if __has_include("probe_only.h")
#define PROBED 1
#else
#define PROBED 100
#endif
int main(void) { return OPT + FB + PROBED; }
