#include <lib.h>
#if defined(LIB_CONF_VALUE) && LIB_CONF_VALUE == 3
#include "conf.h"
#endif
#if PROJ_VALUE == 2
#include "value.h"
#endif
int main(void) { return CONF_SEEN + VALUE_SEEN; }
