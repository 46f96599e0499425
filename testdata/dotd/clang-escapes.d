out\ dir.o: t.c /usr/include/stdio.h \
  /usr/include/x86_64-linux-gnu/bits/libc-header-start.h \
  /usr/include/features.h /usr/include/features-time64.h \
  /usr/include/x86_64-linux-gnu/bits/wordsize.h \
  /usr/include/x86_64-linux-gnu/bits/timesize.h \
  /usr/include/stdc-predef.h /usr/include/x86_64-linux-gnu/sys/cdefs.h \
  /usr/include/x86_64-linux-gnu/bits/long-double.h \
  /usr/include/x86_64-linux-gnu/gnu/stubs.h \
  /usr/include/x86_64-linux-gnu/gnu/stubs-64.h \
  /usr/lib/llvm-14/lib/clang/14.0.6/include/stddef.h \
  /usr/lib/llvm-14/lib/clang/14.0.6/include/stdarg.h \
  /usr/include/x86_64-linux-gnu/bits/types.h \
  /usr/include/x86_64-linux-gnu/bits/typesizes.h \
  /usr/include/x86_64-linux-gnu/bits/time64.h \
  /usr/include/x86_64-linux-gnu/bits/types/__fpos_t.h \
  /usr/include/x86_64-linux-gnu/bits/types/__mbstate_t.h \
  /usr/include/x86_64-linux-gnu/bits/types/__fpos64_t.h \
  /usr/include/x86_64-linux-gnu/bits/types/__FILE.h \
  /usr/include/x86_64-linux-gnu/bits/types/FILE.h \
  /usr/include/x86_64-linux-gnu/bits/types/struct_FILE.h \
  /usr/include/x86_64-linux-gnu/bits/stdio_lim.h \
  /usr/include/x86_64-linux-gnu/bits/floatn.h \
  /usr/include/x86_64-linux-gnu/bits/floatn-common.h \
  aaaaaaaaaaaa/bbbbbbbbbbbbbbbbb/header_one.h \
  aaaaaaaaaaaa/bbbbbbbbbbbbbbbbb/header_two.h \
  aaaaaaaaaaaa/bbbbbbbbbbbbbbbbb/header_three.h \
  aaaaaaaaaaaa/bbbbbbbbbbbbbbbbb/header_four.h \
  aaaaaaaaaaaa/bbbbbbbbbbbbbbbbb/header_five.h \
  aaaaaaaaaaaa/bbbbbbbbbbbbbbbbb/header_six.h \
  aaaaaaaaaaaa/bbbbbbbbbbbbbbbbb/header_seven.h sp\ ace/h\ h.h

/usr/include/stdio.h:

/usr/include/x86_64-linux-gnu/bits/libc-header-start.h:

/usr/include/features.h:

/usr/include/features-time64.h:

/usr/include/x86_64-linux-gnu/bits/wordsize.h:

/usr/include/x86_64-linux-gnu/bits/timesize.h:

/usr/include/stdc-predef.h:

/usr/include/x86_64-linux-gnu/sys/cdefs.h:

/usr/include/x86_64-linux-gnu/bits/long-double.h:

/usr/include/x86_64-linux-gnu/gnu/stubs.h:

/usr/include/x86_64-linux-gnu/gnu/stubs-64.h:

/usr/lib/llvm-14/lib/clang/14.0.6/include/stddef.h:

/usr/lib/llvm-14/lib/clang/14.0.6/include/stdarg.h:

/usr/include/x86_64-linux-gnu/bits/types.h:

/usr/include/x86_64-linux-gnu/bits/typesizes.h:

/usr/include/x86_64-linux-gnu/bits/time64.h:

/usr/include/x86_64-linux-gnu/bits/types/__fpos_t.h:

/usr/include/x86_64-linux-gnu/bits/types/__mbstate_t.h:

/usr/include/x86_64-linux-gnu/bits/types/__fpos64_t.h:

/usr/include/x86_64-linux-gnu/bits/types/__FILE.h:

/usr/include/x86_64-linux-gnu/bits/types/FILE.h:

/usr/include/x86_64-linux-gnu/bits/types/struct_FILE.h:

/usr/include/x86_64-linux-gnu/bits/stdio_lim.h:

/usr/include/x86_64-linux-gnu/bits/floatn.h:

/usr/include/x86_64-linux-gnu/bits/floatn-common.h:

aaaaaaaaaaaa/bbbbbbbbbbbbbbbbb/header_one.h:

aaaaaaaaaaaa/bbbbbbbbbbbbbbbbb/header_two.h:

aaaaaaaaaaaa/bbbbbbbbbbbbbbbbb/header_three.h:

aaaaaaaaaaaa/bbbbbbbbbbbbbbbbb/header_four.h:

aaaaaaaaaaaa/bbbbbbbbbbbbbbbbb/header_five.h:

aaaaaaaaaaaa/bbbbbbbbbbbbbbbbb/header_six.h:

aaaaaaaaaaaa/bbbbbbbbbbbbbbbbb/header_seven.h:

sp\ ace/h\ h.h:
