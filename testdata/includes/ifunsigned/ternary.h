const char *ternary = "ternary.h";
