#define BOM 1
