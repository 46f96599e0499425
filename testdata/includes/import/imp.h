static int imp_once;
#define IMP 5
