#define OPT 1
