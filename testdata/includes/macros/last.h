#define LAST 3
