#define HDR "plain.h"
#include HDR
#define STR(x) #x
#define XSTR(x) STR(x)
#define CAT(a, b) a##b
#include XSTR(CAT(pas, ted).h)
#define SUBDIR(name) <sub/name.h>
#include SUBDIR(angle)
#define VERSIONED(v) XSTR(CAT(ver_, v).h)
#include VERSIONED(2)
int main(void) { return PLAIN + PASTED + ANGLE + VER; }
