#include "@DIR@/abs_target.h"
int main(void) { return T; }
