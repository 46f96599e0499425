/* A relative __has_include probe of a header, then a literal absolute
   #include of it: its copy must still name it as the absolute include
   does (sweep AA, D4). */
#if __has_include("h8.h")
#include "@DIR@/inc/h8.h"
#endif
