#include "used.h"
int main(void) { return USED; }
