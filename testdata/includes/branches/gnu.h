#define GNU 2
