#ifndef DEMO_REPORT_H
#define DEMO_REPORT_H
#ifdef __cplusplus
extern "C" {
#endif
/* Formats a titled list of words, sorted, into a static buffer (C++ inside). */
const char *sorted_report(const char *title, const char *const *words, int n);
#ifdef __cplusplus
}
#endif
#endif
