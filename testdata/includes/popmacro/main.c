/* #pragma push_macro / pop_macro restore a definition the walk does not
 * track: the restored macro must not keep the value seen last. */
#define PM 1
#pragma push_macro("PM")
#undef PM
#define PM 2
#pragma pop_macro("PM")
#if PM == 1
#include "popped.h"
#endif

/* The same through _Pragma in an ordinary line. */
#define R 1
#pragma push_macro("R")
#undef R
#define R 2
_Pragma("pop_macro(\"R\")")
#if R == 1
#include "r.h"
#endif

/* _Pragma in a macro body acts wherever the macro is expanded. */
#define RESTORE_Q _Pragma("pop_macro(\"Q\")")
#define Q 1
#pragma push_macro("Q")
#undef Q
#define Q 2
RESTORE_Q
#if Q == 1
#include "restored.h"
#endif

int main(void) { return POPPED + R_SEEN + RESTORED; }
