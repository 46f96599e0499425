int ok(void) { return 1; }
#error this file is broken on purpose
