const char *compare = "compare.h";
