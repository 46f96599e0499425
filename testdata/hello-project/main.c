#include <stdio.h>
#include "hello.h"

int main(void)
{
    greet("world");
    printf("sum %d\n", sum_to(10));
    return 0;
}
