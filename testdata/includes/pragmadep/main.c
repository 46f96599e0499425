#pragma GCC dependency "gen/grammar.y"
#pragma GCC dependency "gen/grammar.y" regenerate me
int main(void) { return 0; }
