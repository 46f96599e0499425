"""Modules of scripts/bench, the benchmark harness (see scripts/bench --help).

cli        options, the run plan, and the main loop
procs      child processes: spawning into cgroups, sampling, reaping, cleanup
accounting CPU and memory accounting (cgroups v2 or /proc), private network namespace
projects   the source trees that are compiled and the generated Makefile
impls      the implementations (ours, stock, patched stock pump) and their probes
runner     one measured build
report     medians, ratios, the markdown table and the SVG chart
"""
