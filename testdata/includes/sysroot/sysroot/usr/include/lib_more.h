/* Reached from lib.h: the scan follows it. */
#define LIB_MORE 1
#include <lib_user.h>
