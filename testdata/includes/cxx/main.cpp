#include <vector>
#include <string>
#include "local.hpp"
int main() { std::vector<int> v{1, 2}; return static_cast<int>(v.size()) + Local::value; }
