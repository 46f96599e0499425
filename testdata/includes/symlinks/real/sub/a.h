#include "../b.h"
#define A 1
