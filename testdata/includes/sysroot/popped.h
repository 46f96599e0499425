#define POPPED_SEEN 1
