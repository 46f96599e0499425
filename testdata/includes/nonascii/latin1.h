/* café ÿþ */
static const char s[] = "été Ã©";
