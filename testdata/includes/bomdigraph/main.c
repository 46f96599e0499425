#include "bom.h"
%:include "digraph.h"
#include "absbom.h"
int main(void) { return BOM + DIGRAPH + ABS; }
