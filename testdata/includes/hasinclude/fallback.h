#define FB 2
