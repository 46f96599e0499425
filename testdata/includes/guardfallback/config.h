#ifndef CONFIG_H
#define CONFIG_H
#define SETTING 1
#endif
