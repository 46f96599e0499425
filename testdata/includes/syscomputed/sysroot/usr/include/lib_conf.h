#define LIB_CONF_VALUE 3
#undef PROJ_VALUE
#define PROJ_VALUE 2
