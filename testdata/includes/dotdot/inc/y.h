#define Y 2
static const char *yfile = __FILE__;
