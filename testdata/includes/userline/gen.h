#line 1 "/generated/from/grammar.y"
static const char gen_where[] = __FILE__;
static const int gen_line = __LINE__;
