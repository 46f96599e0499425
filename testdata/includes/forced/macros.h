#define MHDR "via_imacros.h"
