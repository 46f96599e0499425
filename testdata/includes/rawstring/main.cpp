// Raw string literals hold text that looks like directives; none of it is
// one. The headers after them must still be found.
const char *script = R"(
#if 0
#include "not_a_header.h"
)";
#include "after_plain.h"
const char *generated = u8R"gen(
#ifdef NEVER
)" still inside
#endif
)gen";
#include "after_delimited.h"
int main() { return AFTER_PLAIN + AFTER_DELIMITED + (script[0] == '\n') + (generated[0] == '\n') - 4; }
