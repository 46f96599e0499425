/* A system header whose include is computed: what it reads is not
 * followed by the scan, so every macro may be anything afterwards. */
#ifndef LIB_H
#define LIB_H
#define LIB_CONF_HEADER <lib_conf.h>
#include LIB_CONF_HEADER
#endif
