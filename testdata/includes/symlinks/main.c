#include "linkdir/a.h"
int main(void) { return A + B; }
