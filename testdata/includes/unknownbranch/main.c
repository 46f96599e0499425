/* Under a branch the include server cannot decide (_POSIX_VERSION comes
 * from a system header it does not walk): a guarded include cycle and a
 * file that includes itself with a counter must end as they do for gcc. */
#include <unistd.h>
#if defined(_POSIX_VERSION)
#include "a.h"
#include "iter.h"
#endif
int main(void) { return a_val + b_val + part1 + part2 + part3; }
