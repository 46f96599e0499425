#line 1 "/generated/from/main.y"
#include "gen.h"
int main(void) { return gen_where[0] + gen_line + __LINE__ + __FILE__[1]; }
