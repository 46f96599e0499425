#define AF 3
