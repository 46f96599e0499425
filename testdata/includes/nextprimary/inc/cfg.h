const char *cfg = "inc/cfg.h";
