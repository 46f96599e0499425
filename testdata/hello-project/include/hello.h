#ifndef HELLO_H
#define HELLO_H
void greet(const char *who);
int sum_to(int n);
#endif
