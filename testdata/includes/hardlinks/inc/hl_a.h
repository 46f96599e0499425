#pragma once
/* Reached under two names (hl_b.h is a hard link made by the test): Clang
   reads one file once. A second definition would not compile. */
int defined_once = __COUNTER__;
