#define P2008_SEEN 1
