const char *inner = "inc/wrap.h";
