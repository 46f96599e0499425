#define ABS 1
static const char *absfile = __FILE__;
const char *use_abs(void) { return absfile; }
