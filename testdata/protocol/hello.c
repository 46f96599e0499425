#include "hello.h"

int printf(const char *fmt, ...);

int main(void)
{
    printf("%s, %d\n", GREETING, answer());
    return 0;
}

int answer(void)
{
    int total = 0;
    for (int i = 0; i < 7; i++)
        total += 6;
    return total;
}
