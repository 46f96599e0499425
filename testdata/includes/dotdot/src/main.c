#include "../inc/x.h"
#include <y.h>
int main(void) { return X + Y; }
