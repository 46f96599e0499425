const char *c = "from c.h";
