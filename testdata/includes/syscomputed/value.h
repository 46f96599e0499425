#define VALUE_SEEN 1
