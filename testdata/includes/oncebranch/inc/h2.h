#pragma once
/* Read once, with SEL as the main file has it then. */
#if SEL == 1
#include "a.h"
#elif __has_include("b.h")
#include "b.h"
#else
const char *v = "b.h missing";
#endif
