#ifndef HELLO_H
#define HELLO_H
#define GREETING "hello from a distcc transcript"
int answer(void);
#endif
