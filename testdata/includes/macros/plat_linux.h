#define PLAT 1
