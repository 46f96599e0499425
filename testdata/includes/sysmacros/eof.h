#define EOF_SEEN 1
