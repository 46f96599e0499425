#define MODERN 7
