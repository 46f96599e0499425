const char *v = "from b.h";
