#define USED 1
