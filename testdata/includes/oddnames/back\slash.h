#define BS 2
