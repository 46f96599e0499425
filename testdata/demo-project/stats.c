#include "stats.h"

double mean(const int *values, size_t n)
{
    long sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += values[i];
    return n ? (double)sum / (double)n : 0.0;
}

int maximum(const int *values, size_t n)
{
    int best = n ? values[0] : 0;
    for (size_t i = 1; i < n; i++)
        if (values[i] > best)
            best = values[i];
    return best;
}
