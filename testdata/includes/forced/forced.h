#include "from_forced.h"
#define FORCED 1
