#define RESTORED 1
