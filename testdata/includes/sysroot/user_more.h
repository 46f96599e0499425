#define USER_MORE 1
