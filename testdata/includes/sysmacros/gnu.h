#define GNU_SEEN 1
