#include "latin1.h"
int main(void) { return (unsigned char)s[1]; }
