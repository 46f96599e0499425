#define WHERE "@DIR@/abs_target.h"
#include "@DIR@/abs_target.h"
int main(void) { return T + abs_where[0] + WHERE[1]; }
