#import "imp.h"
#import "imp.h"
int main(void) { return IMP; }
