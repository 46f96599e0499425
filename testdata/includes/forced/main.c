#include MHDR
int main(void) { return FORCED + FROM_FORCED + VIA; }
