#define UNDONE_SEEN 1
