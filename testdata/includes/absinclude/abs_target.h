#define T 1
