#include <abs.h>
const char *mainfile = __FILE__;
int main(void) { return ABS; }
