%token NUM
%%
#include "never.h"
