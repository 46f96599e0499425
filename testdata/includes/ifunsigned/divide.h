const char *divide = "divide.h";
