#ifndef LINUX_H
#define LINUX_H
#define LINUX 1
#include "linux.h"
#endif
