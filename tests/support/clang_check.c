/* clang_check.c: libclang (clang-c/Index.h) over generated sources. */
#include "clang_check.h"

#include <clang-c/Index.h>
#include <stdio.h>
#include <string.h>

/* The function enclosing a location, found through the cursor's semantic parents. */
static void enclosing_function(CXTranslationUnit tu, CXSourceLocation loc, char *name, size_t n)
{
  snprintf(name, n, "(file scope)");
  CXCursor c = clang_getCursor(tu, loc);
  for (int depth = 0; depth < 64 && !clang_Cursor_isNull(c); depth++) {
    enum CXCursorKind k = clang_getCursorKind(c);
    if (k == CXCursor_FunctionDecl) {
      CXString s = clang_getCursorSpelling(c);
      snprintf(name, n, "%s", clang_getCString(s));
      clang_disposeString(s);
      return;
    }
    if (k == CXCursor_TranslationUnit || clang_isInvalid(k))
      return;
    c = clang_getCursorSemanticParent(c);
  }
}

int clang_check_source(const char *src, bool opencl, const char *header_name,
                       const char *header_src, const char *include_dir, char *report,
                       size_t report_len)
{
  /* Unsaved files live in a folder that does not exist, so nothing on disk interferes and
   * the header resolves beside the source. */
  const char *file = opencl ? "/xylem-virtual/kernels.cl" : "/xylem-virtual/package.c";
  char header_path[512];
  snprintf(header_path, sizeof header_path, "/xylem-virtual/%s", header_name ? header_name : "none.h");
  const char *cl_args[] = {"-x", "cl", "-cl-std=CL1.2", "-Xclang", "-finclude-default-header",
                           "-Wall", "-Wextra", "-Wshadow", "-Wconversion", "-Wno-sign-conversion",
                           "-Wdouble-promotion", "-Wunused"};
  char inc[4200];
  snprintf(inc, sizeof inc, "-I%s", include_dir ? include_dir : ".");
  const char *c_args[] = {"-x", "c", "-std=c99", "-Wall", "-Wextra", "-Wshadow", "-Wpedantic",
                          "-Wno-overlength-strings", "-Wdouble-promotion", "-Wunused",
                          "-Wmissing-prototypes", "-Wconversion", "-Wno-sign-conversion", inc};
  struct CXUnsavedFile uf[2] = {{file, src, (unsigned long)strlen(src)},
                                {header_path, header_src, header_src ? (unsigned long)strlen(header_src) : 0}};
  CXIndex idx = clang_createIndex(0, 0);
  CXTranslationUnit tu = NULL;
  enum CXErrorCode ec = clang_parseTranslationUnit2(
      idx, file, opencl ? cl_args : c_args,
      opencl ? (int)(sizeof cl_args / sizeof *cl_args) : (int)(sizeof c_args / sizeof *c_args),
      uf, header_name && header_src ? 2 : 1, CXTranslationUnit_None, &tu);
  if (ec != CXError_Success || !tu) {
    clang_disposeIndex(idx);
    snprintf(report, report_len, "libclang could not parse (%d)\n", (int)ec);
    return -1;
  }
  int bad = 0;
  size_t used = strlen(report);
  unsigned n = clang_getNumDiagnostics(tu);
  for (unsigned i = 0; i < n; i++) {
    CXDiagnostic d = clang_getDiagnostic(tu, i);
    enum CXDiagnosticSeverity sev = clang_getDiagnosticSeverity(d);
    if (sev >= CXDiagnostic_Warning) {
      bad++;
      CXSourceLocation loc = clang_getDiagnosticLocation(d);
      unsigned line, col;
      clang_getSpellingLocation(loc, NULL, &line, &col, NULL);
      char fn[256];
      enclosing_function(tu, loc, fn, sizeof fn);
      CXString text = clang_getDiagnosticSpelling(d);
      if (used < report_len)
        used += (size_t)snprintf(report + used, report_len - used, "kernel %s: %u:%u: %s: %s\n",
                                 fn, line, col, sev == CXDiagnostic_Warning ? "warning" : "error",
                                 clang_getCString(text));
      clang_disposeString(text);
    }
    clang_disposeDiagnostic(d);
  }
  clang_disposeTranslationUnit(tu);
  clang_disposeIndex(idx);
  return bad;
}
