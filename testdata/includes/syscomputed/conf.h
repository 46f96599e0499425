#define CONF_SEEN 1
