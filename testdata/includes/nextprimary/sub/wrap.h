#include_next <wrap.h>
const char *outer = "sub/wrap.h";
