#define PASTED 2
