#define VER 4
