#define FROM_FORCED 2
