#define MORE_SEEN 1
