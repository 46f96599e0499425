#define PLAIN_SEEN 1
