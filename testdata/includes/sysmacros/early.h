#define EARLY 1
