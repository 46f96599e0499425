#include_next <wrap.h>
#define WRAP 1
