#import "imp.h"
#import "imp.h"
#include <vector>
int sum_x(void) {
  std::vector<Point> v(4, Point{ORIGIN_X, 1});
  int s = 0;
  for (const Point &p : v) s += p.x;
  return s;
}
