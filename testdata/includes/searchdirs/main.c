#include "quoted.h"
#include <sys_ish.h>
#include <after.h>
int main(void) { return Q + S + AF; }
