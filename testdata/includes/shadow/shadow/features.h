#include_next <features.h>
#define SHADOWED 1
