#include <wrap.h>
int main(void) { return WRAP + INNER; }
