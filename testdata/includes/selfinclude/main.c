#ifndef PASS
#define PASS 1
#define ITEM(x) int x##_one;
#include __FILE__
#undef ITEM
#undef PASS
#define PASS 2
#define ITEM(x) int x##_two;
#include __FILE__
int main(void) { return 0; }
#else
#include "items.def"
#endif
