/* A small program built by scripts/demo through distcc: several C files and
 * one C++ file, compiled on two daemons in plain and in pump mode. */
#include <stdio.h>
#include "primes.h"
#include "report.h"
#include "stats.h"
#include "text.h"

int main(void)
{
    int samples[] = {4, 8, 15, 16, 23, 42};
    size_t n = sizeof samples / sizeof samples[0];
    char word[] = "distcc";
    const char *words[] = {"pump", "distccd", "lsdistcc", "client"};

    printf("primes below 100000: %d\n", count_primes(100000));
    printf("mean %.2f max %d\n", mean(samples, n), maximum(samples, n));
    printf("vowels in \"compilation\": %zu\n", vowels("compilation"));
    printf("reversed: %s\n", reverse(word));
    printf("%s\n", sorted_report("applets", words, 4));
    return 0;
}
