#include "config.h"
#include PLATFORM_HDR
#include VARIANT
#include QQ(MAKE(last))
#if LEVEL > 2
#include "level3.h"
#endif
#ifdef UNUSED
#include "missing_unused.h"
#endif
int main(void) { return PLAT + VAR + LAST + L3; }
