#define ANGLE 3
