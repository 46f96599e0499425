#define SETTING 0
