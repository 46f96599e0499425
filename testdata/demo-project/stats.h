#ifndef DEMO_STATS_H
#define DEMO_STATS_H
#include <stddef.h>
double mean(const int *values, size_t n);
int maximum(const int *values, size_t n);
#endif
