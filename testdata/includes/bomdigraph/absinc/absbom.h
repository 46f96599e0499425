#define ABS 3
