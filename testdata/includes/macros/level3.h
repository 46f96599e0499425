#define L3 4
