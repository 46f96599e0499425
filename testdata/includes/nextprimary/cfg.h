const char *cfg = "cfg.h beside the source";
