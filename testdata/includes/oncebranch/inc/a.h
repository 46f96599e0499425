const char *v = "from a.h";
