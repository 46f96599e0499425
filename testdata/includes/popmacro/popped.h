#define POPPED 1
