#define AFTER_PLAIN 1
