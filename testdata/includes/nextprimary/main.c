/* In the main file, `#include_next` and `__has_include_next` search as
   `#include` and `__has_include` do (GCC warns and carries on), so the
   header beside the source is found first. */
#if __has_include_next("cfg.h")
#include_next "cfg.h"
#else
const char *cfg = "default";
#endif
/* After a file found beside its includer, the search goes on from the
   head of the chain whatever the spelling: sub/wrap.h's <wrap.h> is
   inc/wrap.h. */
#include "sub/wrap.h"
int main(void) { return 0; }
