#define VIA 3
