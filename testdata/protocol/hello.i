# 0 "hello.c"
# 0 "<built-in>"
# 0 "<command-line>"
# 1 "/usr/include/stdc-predef.h" 1 3 4
# 0 "<command-line>" 2
# 1 "hello.c"
# 1 "hello.h" 1



int answer(void);
# 2 "hello.c" 2

int printf(const char *fmt, ...);

int main(void)
{
    printf("%s, %d\n", "hello from a distcc transcript", answer());
    return 0;
}

int answer(void)
{
    int total = 0;
    for (int i = 0; i < 7; i++)
        total += 6;
    return total;
}
