#include "a.h"
int b_val;
