/* __has_include with an operand given through macros: the compiler
   expands it, finds the header, and takes the branch; the header must be
   on the server too, although nothing includes it. */
#define PROBE "userconf.h"
#define S(x) #x
#define XS(x) S(x)
#define ANGLE <angled.h>
#if __has_include(PROBE)
const char *conf = "from userconf.h";
#else
const char *conf = "built-in default";
#endif
#if __has_include(XS(probed.h)) && __has_include(ANGLE)
const char *probed = "probed.h and angled.h are there";
#endif
int main(void) { return 0; }
