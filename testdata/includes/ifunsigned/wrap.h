const char *wrap = "wrap.h";
