#define PLATFORM_HDR "plat_linux.h"
#define MAKE(n) n.h
#define Q(x) #x
#define QQ(x) Q(x)
