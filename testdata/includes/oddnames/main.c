#include "we,ird.h"
#include "back\slash.h"
int main(void) { return W + BS; }
