#ifndef DEMO_TEXT_H
#define DEMO_TEXT_H
#include <stddef.h>
/* Reverses s in place and returns it. */
char *reverse(char *s);
/* Number of vowels in s. */
size_t vowels(const char *s);
#endif
