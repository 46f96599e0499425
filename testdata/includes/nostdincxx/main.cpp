#include <vector>
#include <stddef.h>
int count(void) { tiny_vector<int> v{7}; return v.size() + v.first + (int)sizeof(size_t); }
