int ok(void) { return 1; }
int broken(void) { return undeclared_name; }
