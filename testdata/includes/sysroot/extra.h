#define EXTRA_SEEN 1
