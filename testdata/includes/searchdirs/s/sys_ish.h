#define S 2
