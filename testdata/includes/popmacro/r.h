#define R_SEEN 1
