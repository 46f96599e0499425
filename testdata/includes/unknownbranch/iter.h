#if !defined(COUNT)
#  define COUNT 1
#  include "iter.h"
#elif COUNT == 1
#  include "part1.h"
#  undef COUNT
#  define COUNT 2
#  include "iter.h"
#elif COUNT == 2
#  include "part2.h"
#  undef COUNT
#  define COUNT 3
#  include "iter.h"
#elif COUNT == 3
#  include "part3.h"
#endif
