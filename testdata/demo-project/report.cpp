#include <algorithm>
#include <sstream>
#include <string>
#include <vector>
#include "report.h"

const char *sorted_report(const char *title, const char *const *words, int n)
{
    static std::string out;
    std::vector<std::string> list(words, words + n);
    std::sort(list.begin(), list.end());
    std::ostringstream s;
    s << title << ":";
    for (const auto &w : list)
        s << ' ' << w;
    out = s.str();
    return out.c_str();
}
