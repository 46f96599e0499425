/* Found through -I. from the system header lib_more.h. */
#ifdef LIB_MORE
#include "user_more.h"
#endif
#define LIB_USER 1
