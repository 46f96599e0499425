#ifndef GUARDED_H
#define GUARDED_H
#ifdef WANT_C
#include "c.h"
#endif
#endif
