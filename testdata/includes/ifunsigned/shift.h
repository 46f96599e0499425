const char *shift = "shift.h";
