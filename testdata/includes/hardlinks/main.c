#include "hl_a.h"
#include "hl_b.h"
int main(void) { return defined_once; }
