#define PROJ_POPPED 1
#pragma push_macro("PROJ_POPPED")
#undef PROJ_POPPED
#define WANT_EXTRA
#include <lib.h>
#include "check.h"

int main(void)
{
    return PLAIN_SEEN + EXTRA_SEEN + CMDLINE_SEEN + UNDONE_SEEN + POPPED_SEEN + MORE_SEEN
        + USER_MORE + LIB_USER;
}
