#include "h3.h"
int main(void) { return where[0] == 0; }
