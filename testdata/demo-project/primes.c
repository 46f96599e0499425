#include <stdlib.h>
#include <string.h>
#include "primes.h"

int count_primes(int limit)
{
    if (limit < 3)
        return 0;
    char *composite = calloc((size_t)limit, 1);
    if (!composite)
        return -1;
    int count = 0;
    for (int i = 2; i < limit; i++) {
        if (composite[i])
            continue;
        count++;
        for (long j = (long)i * i; j < limit; j += i)
            composite[j] = 1;
    }
    free(composite);
    return count;
}
