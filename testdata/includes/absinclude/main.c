#include "@DIR@/abs_target.h"
int main(void) { return T + abs_where[0]; }
