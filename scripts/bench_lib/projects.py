"""The source trees the benchmark compiles, and the Makefile that drives them.

Two generated micro projects (written into the run's temp dir):
  empty    many empty .c files: pure per-job overhead of distcc
  headers  many .c files that include a stack of libc headers and a chain of
           project headers, so preprocessing and include analysis dominate
Two real projects, vendored in crates fetched from crates.io with
`cargo fetch` into the cache dir (never into the repository):
  libgit2  libgit2 1.8.1 from libgit2-sys 0.17.0: the 202 C files, flags and
           defines of its build.rs, and the git2_features.h it writes
  rocksdb  RocksDB 8.10 from librocksdb-sys 0.16.0: a fixed, evenly spaced
           subset of rocksdb_lib_sources.txt, flags of its build.rs (C++17)

A project is a list of sources with their compile flags; write_makefile()
turns it into explicit rules `obj: src ; $(CC) FLAGS -c src -o obj`, so
`make -jN CC=... CXX=...` compiles only (-c), as distcc is used in practice.
"""

import json
import os
import shlex

LIBGIT2_CRATE = ("libgit2-sys", "0.17.0+1.8.1")
ROCKSDB_CRATE = ("librocksdb-sys", "0.16.0+8.10.0")

LIBC_HEADERS = [
    "stdio.h", "stdlib.h", "string.h", "errno.h", "unistd.h", "sys/types.h",
    "sys/stat.h", "fcntl.h", "pthread.h", "signal.h", "time.h", "math.h",
    "ctype.h", "stdint.h", "inttypes.h", "limits.h", "assert.h", "stdarg.h",
    "sys/socket.h", "netinet/in.h", "dirent.h", "locale.h", "wchar.h",
]


class Source:
    """One translation unit: absolute path, object name, language, extra flags."""

    def __init__(self, path, obj, lang, extra=()):
        self.path = path
        self.obj = obj
        self.lang = lang
        self.extra = list(extra)


class Project:
    def __init__(self, name, description, sources, cflags, cxxflags, tree):
        self.name = name
        self.description = description
        self.sources = sources
        self.cflags = cflags
        self.cxxflags = cxxflags
        self.tree = tree

    def __len__(self):
        return len(self.sources)


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def make_empty(root, count):
    """`count` empty C files."""
    d = os.path.join(root, "empty")
    srcs = []
    for i in range(count):
        p = os.path.join(d, "src", f"e{i:04}.c")
        _write(p, "")
        srcs.append(Source(p, f"e{i:04}.o", "c"))
    return Project("empty", f"{count} empty C files (per-job overhead)", srcs, ["-O2"], [], d)


def make_headers(root, count, depth=16):
    """`count` C files, each including libc headers and a chain of `depth`
    project headers with macros, structs and inline functions."""
    d = os.path.join(root, "headers")
    inc = os.path.join(d, "include", "proj")
    for level in range(depth):
        nxt = f'#include "proj/h{level + 1:02}.h"\n' if level + 1 < depth else ""
        _write(
            os.path.join(inc, f"h{level:02}.h"),
            f"#ifndef PROJ_H{level:02}\n#define PROJ_H{level:02}\n{nxt}"
            f"#include <{LIBC_HEADERS[level % len(LIBC_HEADERS)]}>\n"
            f"#define PROJ_LEVEL_{level} ({level} * 3 + 1)\n"
            f"struct proj_s{level} {{ int a; long b[{level + 1}]; const char *name; }};\n"
            f"static inline int proj_f{level}(int x) {{ return x * PROJ_LEVEL_{level} + {level}; }}\n"
            f"#endif\n",
        )
    libc = "".join(f"#include <{h}>\n" for h in LIBC_HEADERS)
    srcs = []
    for i in range(count):
        p = os.path.join(d, "src", f"u{i:04}.c")
        body = " + ".join(f"proj_f{k}(x + {i})" for k in range(0, depth, 3))
        _write(
            p,
            f'{libc}#include "proj/h00.h"\n\n'
            f"int unit_{i}(int x) {{\n"
            f"  struct proj_s{i % depth} s = {{ x, {{ 0 }}, \"u{i}\" }};\n"
            f"  return s.a + {body};\n}}\n",
        )
        srcs.append(Source(p, f"u{i:04}.o", "c"))
    flags = ["-O2", "-I" + os.path.join(d, "include")]
    return Project("headers", f"{count} C files including {len(LIBC_HEADERS)} libc headers "
                   f"and {depth} project headers", srcs, flags, [], d)


def fetch_crates(table, cache, log):
    """`cargo fetch` of the two crates into cargo's registry via a throwaway
    package in the cache dir. Returns {crate name: source dir} or raises."""
    d = os.path.join(cache, "crates")
    os.makedirs(os.path.join(d, "src"), exist_ok=True)
    _write(os.path.join(d, "src", "lib.rs"), "")
    _write(
        os.path.join(d, "Cargo.toml"),
        '[package]\nname = "distcc-bench-sources"\nversion = "0.0.0"\nedition = "2021"\n'
        "publish = false\n\n[dependencies]\n"
        f'{LIBGIT2_CRATE[0]} = {{ version = "={LIBGIT2_CRATE[1]}", default-features = false }}\n'
        f'{ROCKSDB_CRATE[0]} = {{ version = "={ROCKSDB_CRATE[1]}", default-features = false }}\n'
        "\n[workspace]\n",
    )
    manifest = os.path.join(d, "Cargo.toml")
    rc, out = table.run(["cargo", "metadata", "--format-version", "1", "--offline",
                         "--manifest-path", manifest], stderr=open(os.devnull, "w"))
    if rc != 0:
        log("fetching libgit2-sys and librocksdb-sys with cargo fetch (into cargo's cache)")
        rc, out2 = table.run(["cargo", "fetch", "--manifest-path", manifest], timeout=900)
        if rc != 0:
            raise RuntimeError("cargo fetch failed: " + out2.strip()[-500:])
        rc, out = table.run(["cargo", "metadata", "--format-version", "1", "--offline",
                             "--manifest-path", manifest], stderr=open(os.devnull, "w"))
        if rc != 0:
            raise RuntimeError("cargo metadata failed after fetch")
    meta = json.loads(out)
    dirs = {}
    for pkg in meta["packages"]:
        dirs[pkg["name"]] = os.path.dirname(pkg["manifest_path"])
    for name in (LIBGIT2_CRATE[0], ROCKSDB_CRATE[0], "libz-sys"):
        if name not in dirs:
            raise RuntimeError(f"crate {name} not found after cargo fetch")
    return dirs


def _c_files(dirpath):
    return sorted(os.path.join(dirpath, f) for f in os.listdir(dirpath) if f.endswith(".c"))


def make_libgit2(cache, crate_dirs):
    """libgit2 1.8.1 as libgit2-sys's build.rs compiles it on x86_64 Linux
    (no https/ssh features): same files, include dirs and defines."""
    top = os.path.join(crate_dirs[LIBGIT2_CRATE[0]], "libgit2")
    zlib = os.path.join(crate_dirs["libz-sys"], "src", "zlib")
    gen = os.path.join(cache, "libgit2-generated")
    features = [
        "#ifndef INCLUDE_features_h", "#define INCLUDE_features_h",
        "#define GIT_THREADS 1", "#define GIT_TRACE 1", "#define GIT_HTTPPARSER_BUILTIN 1",
        "#define GIT_USE_NSEC 1", "#define GIT_IO_POLL 1", "#define GIT_IO_SELECT 1",
        "#define GIT_USE_STAT_MTIM 1", "#define GIT_ARCH_64 1",
        "#define GIT_SHA1_COLLISIONDETECT 1", "#define GIT_SHA256_BUILTIN 1", "#endif",
    ]
    _write(os.path.join(gen, "git2_features.h"), "\n".join(features) + "\n")
    files = []
    for sub in ["src/libgit2", "src/util", "src/libgit2/transports", "src/libgit2/streams",
                "deps/llhttp", "deps/xdiff", "deps/pcre"]:
        files += _c_files(os.path.join(top, sub))
    files += [os.path.join(top, "src/util/allocators", f) for f in ("failalloc.c", "stdalloc.c")]
    files += _c_files(os.path.join(top, "src/util/unix"))
    hashfiles = ["src/util/hash/collisiondetect.c", "src/util/hash/sha1dc/sha1.c",
                 "src/util/hash/sha1dc/ubc_check.c"]
    files += [os.path.join(top, f) for f in hashfiles]
    files += [os.path.join(top, f) for f in ("src/util/hash/builtin.c",
                                            "src/util/hash/rfc6234/sha224-256.c")]
    flags = ["-O2", "-ffunction-sections", "-fdata-sections", "-fPIC", "-m64",
             "-I" + gen, "-I" + os.path.join(top, "include"),
             "-I" + os.path.join(top, "src/libgit2"), "-I" + os.path.join(top, "src/util"),
             "-I" + os.path.join(top, "deps/llhttp"), "-I" + os.path.join(top, "deps/xdiff"),
             "-I" + os.path.join(top, "deps/pcre"), "-I" + zlib,
             "-DGIT_REGEX_BUILTIN=1", "-DHAVE_STDINT_H=1", "-DHAVE_MEMMOVE=1",
             "-DNO_RECURSE=1", "-DNEWLINE=10", "-DPOSIX_MALLOC_THRESHOLD=10", "-DLINK_SIZE=2",
             "-DPARENS_NEST_LIMIT=250", "-DMATCH_LIMIT=10000000",
             "-DMATCH_LIMIT_RECURSION=MATCH_LIMIT", "-DMAX_NAME_SIZE=32",
             "-DMAX_NAME_COUNT=10000", "-fvisibility=hidden", "-DSHA1DC_NO_STANDARD_INCLUDES=1"]
    # build.rs passes these two to every file; they only matter to the SHA1DC
    # files, and giving them only there keeps make from needing a shell (the
    # quotes) for the other 199 jobs.
    sha1dc = ['-DSHA1DC_CUSTOM_INCLUDE_SHA1_C="common.h"',
              '-DSHA1DC_CUSTOM_INCLUDE_UBC_CHECK_C="common.h"']
    srcs = []
    for f in files:
        rel = os.path.relpath(f, top)
        extra = sha1dc if rel in hashfiles else []
        srcs.append(Source(f, rel[:-2].replace("/", "_") + ".o", "c", extra))
    return Project("libgit2", f"libgit2 1.8.1 (libgit2-sys {LIBGIT2_CRATE[1].split('+')[0]}), "
                   f"{len(srcs)} C files, flags of its build.rs with -O2", srcs, flags, [], top)


def make_rocksdb(crate_dirs, count):
    """A fixed subset of `count` RocksDB 8.10 files, evenly spaced over the
    sorted rocksdb_lib_sources.txt, with librocksdb-sys's build.rs flags
    (no compression features, x86_64 baseline SSE2)."""
    crate = crate_dirs[ROCKSDB_CRATE[0]]
    with open(os.path.join(crate, "rocksdb_lib_sources.txt")) as f:
        names = sorted(n.strip() for n in f if n.strip() and n.strip() != "util/build_version.cc")
    count = max(1, min(count, len(names)))
    picked = [names[i * len(names) // count] for i in range(count)]
    top = os.path.join(crate, "rocksdb")
    flags = ["-O2", "-ffunction-sections", "-fdata-sections", "-fPIC", "-m64",
             "-I" + os.path.join(top, "include"), "-I" + top,
             "-I" + os.path.join(top, "third-party/gtest-1.8.1/fused-src"), "-I" + crate,
             "-DNDEBUG=1", "-msse2", "-DOS_LINUX", "-DROCKSDB_PLATFORM_POSIX",
             "-DROCKSDB_LIB_IO_POSIX", "-DROCKSDB_SUPPORT_THREAD_LOCAL", "-std=c++17",
             "-Wsign-compare", "-Wshadow", "-Wno-unused-parameter", "-Wno-unused-variable",
             "-Woverloaded-virtual", "-Wnon-virtual-dtor", "-Wno-missing-field-initializers",
             "-Wno-strict-aliasing", "-Wno-invalid-offsetof"]
    srcs = [Source(os.path.join(top, n), n[:-3].replace("/", "_") + ".o", "c++") for n in picked]
    return Project("rocksdb", f"RocksDB 8.10 (librocksdb-sys {ROCKSDB_CRATE[1].split('+')[0]}), "
                   f"{len(srcs)} of {len(names)} C++ files, flags of its build.rs with -O2",
                   srcs, [], flags, top)


def write_makefile(project, builddir):
    """Writes builddir/Makefile with one explicit rule per object in o/."""
    os.makedirs(os.path.join(builddir, "o"), exist_ok=True)
    lines = [
        "# Generated by scripts/bench: compile only, one rule per object.",
        "CFLAGS = " + " ".join(shlex.quote(f) for f in project.cflags),
        "CXXFLAGS = " + " ".join(shlex.quote(f) for f in project.cxxflags),
        ".SUFFIXES:",
        ".PHONY: all",
        "all: " + " ".join("o/" + s.obj for s in project.sources),
    ]
    for s in project.sources:
        tool, flags = ("$(CXX)", "$(CXXFLAGS)") if s.lang == "c++" else ("$(CC)", "$(CFLAGS)")
        extra = "".join(" " + shlex.quote(f) for f in s.extra)
        lines.append(f"o/{s.obj}: {s.path}")
        lines.append(f"\t{tool} {flags}{extra} -c {s.path} -o o/{s.obj}")
    _write(os.path.join(builddir, "Makefile"), "\n".join(lines) + "\n")


def warm_cache(project):
    """Reads every file of the project once, so the first measured build
    does not pay for a cold page cache."""
    total = 0
    for dirpath, _dirs, files in os.walk(project.tree):
        for f in files:
            try:
                with open(os.path.join(dirpath, f), "rb") as fh:
                    total += len(fh.read())
            except OSError:
                pass
    return total
