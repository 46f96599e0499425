struct Point { int x, y; };
#define ORIGIN_X 3
