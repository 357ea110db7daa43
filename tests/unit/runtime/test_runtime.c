/*
 * test_runtime.c: the xylem runtime against a real OpenCL device (PoCL on CI): device
 * listing and selection, program builds and the binary cache, launch plans with poison,
 * guards, profiling and limits, and calibration.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xylem-rt.h"

/* Fails the test with the runtime's message, which says what went wrong. */
#define ASSERT_OK(rc, err)                                          \
  do {                                                              \
    if ((rc) != XRT_OK)                                             \
      fail_msg("rc %d: %s", (int)(rc), (err)->message);             \
  } while (0)

#define ASSERT_HAS(text, part)                                      \
  do {                                                              \
    if (!strstr((text), (part)))                                    \
      fail_msg("'%s' not found in: %s", (part), (text));            \
  } while (0)

/* One context for the whole file: opening a device is the slow part. */
static xrt_context *g_ctx;
static xrt_error g_err;

/* ------------------------------------------------------------------ helpers */

static void remove_tree(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0)
    return;
  if (S_ISDIR(st.st_mode)) {
    DIR *d = opendir(path);
    if (d) {
      struct dirent *e;
      while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
          continue;
        char child[4096];
        snprintf(child, sizeof child, "%s/%s", path, e->d_name);
        remove_tree(child);
      }
      closedir(d);
    }
    rmdir(path);
  } else {
    unlink(path);
  }
}

/* XYLEM_CACHE_DIR as the test started (meson points it into the build tree). */
static char g_cache_env[4096];

static void restore_cache_env(void) {
  if (g_cache_env[0])
    setenv("XYLEM_CACHE_DIR", g_cache_env, 1);
  else
    unsetenv("XYLEM_CACHE_DIR");
}

/* A fresh cache directory for one test, set as XYLEM_CACHE_DIR; drop_cache undoes it. */
static void temp_cache(char dir[256]) {
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, 256, "%s/xylem-rt-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  assert_non_null(mkdtemp(dir));
  assert_int_equal(setenv("XYLEM_CACHE_DIR", dir, 1), 0);
}

static void drop_cache(const char *dir) {
  restore_cache_env();
  remove_tree(dir);
}

/* Counts the files in dir whose names contain part; fills first with the first match. */
static int count_files(const char *dir, const char *part, char *first, size_t first_size) {
  DIR *d = opendir(dir);
  if (!d)
    return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.' || !strstr(e->d_name, part))
      continue;
    if (n++ == 0 && first) {
      /* A name that does not fit is reported as empty rather than cut. */
      int w = snprintf(first, first_size, "%s/", dir);
      size_t len = strlen(e->d_name);
      if (w >= 0 && (size_t)w + len < first_size)
        memcpy(first + w, e->d_name, len + 1);
      else
        first[0] = '\0';
    }
  }
  closedir(d);
  return n;
}

static long file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void flip_byte(const char *path, long at) {
  int fd = open(path, O_RDWR);
  assert_true(fd >= 0);
  unsigned char c;
  assert_int_equal(pread(fd, &c, 1, at), 1);
  c ^= 0x5a;
  assert_int_equal(pwrite(fd, &c, 1, at), 1);
  close(fd);
}

static void copy_file(const char *from, const char *to) {
  FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
  assert_non_null(in);
  assert_non_null(out);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0)
    assert_int_equal(fwrite(buf, 1, n, out), n);
  fclose(in);
  fclose(out);
}

/* Builds source with options and returns whether it came from the cache. */
static int build_from_cache(const char *source, const char *options) {
  xrt_program *p = NULL;
  int rc = xrt_program_build(g_ctx, source, options, &p, &g_err);
  ASSERT_OK(rc, &g_err);
  int hit = xrt_program_from_cache(p);
  xrt_program_release(p);
  return hit;
}

static const char *small_source = "__kernel void twice(__global float *x) {\n"
                                  "  x[get_global_id(0)] *= 2.0f;\n"
                                  "}\n";

/* ------------------------------------------------------------------ fixtures */

static int group_setup(void **state) {
  (void)state;
  const char *cache = getenv("XYLEM_CACHE_DIR");
  if (cache)
    snprintf(g_cache_env, sizeof g_cache_env, "%s", cache);
  /* The default device: XYLEM_DEVICE when set, else the first CPU device. */
  if (xrt_context_create(NULL, &g_ctx, &g_err) != XRT_OK) {
    fprintf(stderr, "no device: %s\n", g_err.message);
    return -1;
  }
  const xrt_device_info *d = xrt_context_device(g_ctx);
  fprintf(stderr, "device %d: %s / %s (%s)\n", d->index, d->platform, d->name, d->driver);
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  xrt_context_release(g_ctx);
  return 0;
}

/* ------------------------------------------------------------------ devices */

static void test_devices_list(void **state) {
  (void)state;
  xrt_device_info *list = NULL;
  size_t n = 0;
  int rc = xrt_devices(&list, &n, &g_err);
  ASSERT_OK(rc, &g_err);
  assert_true(n >= 1);
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(list[i].index, (int)i);
    assert_true(strlen(list[i].platform) > 0);
    assert_true(strlen(list[i].name) > 0);
    assert_true(strlen(list[i].driver) > 0);
    assert_true(list[i].compute_units >= 1);
    assert_true(list[i].max_work_group_size >= 1);
    assert_true(list[i].max_alloc_bytes > 0);
    assert_true(list[i].global_mem_bytes >= list[i].max_alloc_bytes);
    assert_true(list[i].local_mem_bytes > 0);
    assert_true(list[i].mem_base_align_bytes >= 1);
  }
  /* Listing twice gives the same order. */
  xrt_device_info *again = NULL;
  size_t n2 = 0;
  rc = xrt_devices(&again, &n2, &g_err);
  ASSERT_OK(rc, &g_err);
  assert_int_equal(n, n2);
  for (size_t i = 0; i < n; i++)
    assert_string_equal(list[i].name, again[i].name);
  xrt_devices_free(again);
  xrt_devices_free(list);
}

/* Opens selector and returns the opened device's list index. */
static int open_index(const char *selector) {
  xrt_context *c = NULL;
  int rc = xrt_context_create(selector, &c, &g_err);
  ASSERT_OK(rc, &g_err);
  int index = xrt_context_device(c)->index;
  xrt_context_release(c);
  return index;
}

static void test_selectors(void **state) {
  (void)state;
  xrt_device_info *list = NULL;
  size_t n = 0;
  ASSERT_OK(xrt_devices(&list, &n, &g_err), &g_err);
  assert_true(n >= 1);

  assert_int_equal(open_index("0"), 0);
  char pd[32];
  snprintf(pd, sizeof pd, "%d:%d", list[n - 1].platform_index, list[n - 1].device_index);
  assert_int_equal(open_index(pd), (int)n - 1);

  for (size_t i = 0; i < n; i++) {
    if (strstr(list[i].platform, "Portable Computing Language")) {
      /* Case-insensitive; "pocl" is in PoCL's platform vendor, "The pocl project". */
      assert_int_equal(open_index("POCL"), (int)i);
      assert_int_equal(open_index("pocl"), (int)i);
      assert_int_equal(open_index("Computing Lang"), (int)i);
      break;
    }
  }
  for (size_t i = 0; i < n; i++)
    if (list[i].is_cpu) {
      assert_true(list[open_index("cpu")].is_cpu);
      /* The default is the first CPU device. */
      const char *saved = getenv("XYLEM_DEVICE");
      char keep[256] = "";
      if (saved)
        snprintf(keep, sizeof keep, "%s", saved);
      unsetenv("XYLEM_DEVICE");
      assert_int_equal(open_index(NULL), (int)i);
      assert_int_equal(open_index(""), (int)i);
      if (saved)
        setenv("XYLEM_DEVICE", keep, 1);
      break;
    }
  xrt_devices_free(list);
}

static void test_selector_bad(void **state) {
  (void)state;
  const char *bad[] = {"no-such-device-xyz", "999", "0:999", "999:0"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    xrt_context *c = (xrt_context *)&g_err; /* must come back NULL */
    int rc = xrt_context_create(bad[i], &c, &g_err);
    assert_int_equal(rc, XRT_E_DEVICE);
    assert_int_equal(g_err.code, XRT_E_DEVICE);
    assert_null(c);
    ASSERT_HAS(g_err.message, bad[i]);
    ASSERT_HAS(g_err.message, "devices: 0: ");
    ASSERT_HAS(g_err.message, xrt_context_device(g_ctx)->name);
  }
}

static void test_selector_env(void **state) {
  (void)state;
  const char *saved = getenv("XYLEM_DEVICE");
  char keep[256] = "";
  if (saved)
    snprintf(keep, sizeof keep, "%s", saved);

  setenv("XYLEM_DEVICE", "0", 1);
  assert_int_equal(open_index(NULL), 0);
  setenv("XYLEM_DEVICE", "bogus-device-from-env", 1);
  xrt_context *c = NULL;
  assert_int_equal(xrt_context_create(NULL, &c, &g_err), XRT_E_DEVICE);
  assert_null(c);
  ASSERT_HAS(g_err.message, "bogus-device-from-env");
  ASSERT_HAS(g_err.message, "XYLEM_DEVICE");
  /* An explicit selector wins over the environment. */
  assert_int_equal(open_index("0"), 0);

  if (saved)
    setenv("XYLEM_DEVICE", keep, 1);
  else
    unsetenv("XYLEM_DEVICE");
}

/* ------------------------------------------------------------------ programs and cache */

static void test_build_error(void **state) {
  (void)state;
  char dir[256];
  temp_cache(dir);
  const char *src = "__kernel void broken(__global float *x) {\n"
                    "  x[0] = undeclared_thing + 1.0f;\n"
                    "}\n";
  xrt_program *p = (xrt_program *)&g_err;
  int rc = xrt_program_build(g_ctx, src, "-DXYLEM_MARK=42 -cl-fast-relaxed-math", &p, &g_err);
  assert_int_equal(rc, XRT_E_BUILD);
  assert_int_equal(g_err.code, XRT_E_BUILD);
  assert_null(p);
  ASSERT_HAS(g_err.message, "-DXYLEM_MARK=42 -cl-fast-relaxed-math");
  ASSERT_HAS(g_err.message, xrt_context_device(g_ctx)->name);
  ASSERT_HAS(g_err.message, "undeclared_thing"); /* the compiler's own diagnostic */
  ASSERT_HAS(g_err.message, "error");
  /* Nothing is cached for a failed build. */
  assert_int_equal(count_files(dir, "", NULL, 0), 0);

  /* A log longer than the message holds is cut, and the message says so. */
  size_t cap = 600 * 96 + 256, len = 0;
  char *big = malloc(cap);
  assert_non_null(big);
  for (int i = 0; i < 600; i++)
    len += (size_t)snprintf(big + len, cap - len,
                            "int noisy_function_%03d(int x) { if (x) return 1; }\n", i);
  snprintf(big + len, cap - len, "__kernel void k(void) { syntax error here }\n");
  assert_int_equal(xrt_program_build(g_ctx, big, "-DLONG_LOG", &p, &g_err), XRT_E_BUILD);
  free(big);
  ASSERT_HAS(g_err.message, "-DLONG_LOG");
  ASSERT_HAS(g_err.message, "build log truncated");
  assert_true(strlen(g_err.message) < XRT_ERROR_MAX);
  drop_cache(dir);
}

static void test_cache_hit_miss(void **state) {
  (void)state;
  char dir[256];
  temp_cache(dir);
  assert_int_equal(build_from_cache(small_source, ""), 0);
  assert_int_equal(build_from_cache(small_source, ""), 1);
  assert_int_equal(build_from_cache(small_source, NULL), 1); /* NULL options mean "" */
  assert_int_equal(build_from_cache(small_source, "-DXYLEM_OTHER=1"), 0);
  assert_int_equal(build_from_cache(small_source, "-DXYLEM_OTHER=1"), 1);
  assert_int_equal(build_from_cache("/* changed */\n" /* different source */
                                    "__kernel void twice(__global float *x) { x[0] = 1.0f; }\n",
                                    ""),
                   0);
  assert_int_equal(count_files(dir, ".bin", NULL, 0), 3);
  assert_int_equal(count_files(dir, ".tmp", NULL, 0), 0);
  drop_cache(dir);
}

/* Runs the cache through one kind of damage: the next build rebuilds silently, and the one
 * after it is a hit again (the entry was rewritten). */
static void damage_then_check(const char *dir, void (*damage)(const char *path)) {
  char path[512];
  assert_int_equal(build_from_cache(small_source, "-DDAMAGE"), 0);
  assert_int_equal(count_files(dir, ".bin", path, sizeof path), 1);
  damage(path);
  assert_int_equal(build_from_cache(small_source, "-DDAMAGE"), 0);
  assert_int_equal(build_from_cache(small_source, "-DDAMAGE"), 1);
  assert_int_equal(count_files(dir, ".tmp", NULL, 0), 0);
  remove_tree(path);
}

static void damage_middle(const char *path) { flip_byte(path, file_size(path) / 2); }
static void damage_last(const char *path) { flip_byte(path, file_size(path) - 1); }
static void damage_magic(const char *path) { flip_byte(path, 0); }
static void damage_truncate(const char *path) {
  assert_int_equal(truncate(path, file_size(path) / 2), 0);
}
static void damage_tiny(const char *path) { assert_int_equal(truncate(path, 3), 0); }
static void damage_empty(const char *path) { assert_int_equal(truncate(path, 0), 0); }
static void damage_grow(const char *path) {
  FILE *f = fopen(path, "ab");
  assert_non_null(f);
  fputs("trailing garbage", f);
  fclose(f);
}
/* A file whose length fields point far past its end. */
static void damage_header_len(const char *path) {
  int fd = open(path, O_RDWR);
  assert_true(fd >= 0);
  unsigned char big[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
  assert_int_equal(pwrite(fd, big, sizeof big, 24), 8); /* the first field's length */
  close(fd);
}

static void test_cache_damage(void **state) {
  (void)state;
  char dir[256];
  temp_cache(dir);
  damage_then_check(dir, damage_middle);
  damage_then_check(dir, damage_last);
  damage_then_check(dir, damage_magic);
  damage_then_check(dir, damage_truncate);
  damage_then_check(dir, damage_tiny);
  damage_then_check(dir, damage_empty);
  damage_then_check(dir, damage_grow);
  damage_then_check(dir, damage_header_len);
  drop_cache(dir);
}

/* An intact entry for another key, placed under this key's file name, must not load: the
 * key is compared in full, not just its hash. */
static void test_cache_full_key(void **state) {
  (void)state;
  char dir[256], a[512], b[512], sub[300];
  temp_cache(dir);
  snprintf(sub, sizeof sub, "%s/a", dir);
  mkdir(sub, 0755);
  setenv("XYLEM_CACHE_DIR", sub, 1);
  assert_int_equal(build_from_cache(small_source, "-DKEY_A"), 0);
  assert_int_equal(count_files(sub, ".bin", a, sizeof a), 1);
  snprintf(sub, sizeof sub, "%s/b", dir);
  mkdir(sub, 0755);
  setenv("XYLEM_CACHE_DIR", sub, 1);
  assert_int_equal(build_from_cache(small_source, "-DKEY_B"), 0);
  assert_int_equal(count_files(sub, ".bin", b, sizeof b), 1);
  copy_file(a, b);
  assert_int_equal(build_from_cache(small_source, "-DKEY_B"), 0);
  assert_int_equal(build_from_cache(small_source, "-DKEY_B"), 1);
  drop_cache(dir);
}

static void test_cache_off(void **state) {
  (void)state;
  char dir[256];
  temp_cache(dir);
  setenv("XYLEM_CACHE", "off", 1);
  assert_int_equal(build_from_cache(small_source, ""), 0);
  assert_int_equal(build_from_cache(small_source, ""), 0);
  unsetenv("XYLEM_CACHE");
  assert_int_equal(count_files(dir, "", NULL, 0), 0);
  drop_cache(dir);
}

static void test_cache_location(void **state) {
  (void)state;
  char dir[256], nested[512], xdg_entry[512];
  temp_cache(dir);
  /* A missing directory is created, parents included. */
  snprintf(nested, sizeof nested, "%s/x/y/z", dir);
  setenv("XYLEM_CACHE_DIR", nested, 1);
  assert_int_equal(build_from_cache(small_source, ""), 0);
  assert_int_equal(count_files(nested, ".bin", NULL, 0), 1);
  /* Without XYLEM_CACHE_DIR: $XDG_CACHE_HOME/xylem. */
  const char *saved = getenv("XDG_CACHE_HOME");
  char keep[512] = "";
  if (saved)
    snprintf(keep, sizeof keep, "%s", saved);
  unsetenv("XYLEM_CACHE_DIR");
  setenv("XDG_CACHE_HOME", dir, 1);
  assert_int_equal(build_from_cache(small_source, ""), 0);
  snprintf(xdg_entry, sizeof xdg_entry, "%s/xylem", dir);
  assert_int_equal(count_files(xdg_entry, ".bin", NULL, 0), 1);
  assert_int_equal(build_from_cache(small_source, ""), 1);
  if (saved)
    setenv("XDG_CACHE_HOME", keep, 1);
  else
    unsetenv("XDG_CACHE_HOME");
  drop_cache(dir);
}

/* ------------------------------------------------------------------ plans */

static const char *plan_source =
    "__kernel void vadd(__global const float *x, __global const float *y,\n"
    "                   __global const float *bias, __global float *out, int n) {\n"
    "  int i = get_global_id(0);\n"
    "  if (i < n) out[i] = x[i] + y[i] + bias[i % 4];\n"
    "}\n"
    "__kernel void scale(__global float *t, int n, int k) {\n"
    "  int i = get_global_id(0);\n"
    "  if (i < n) t[i] *= (float)k;\n"
    "}\n"
    "__kernel void partial(__global float *out, int n) {\n" /* leaves the last one alone */
    "  int i = get_global_id(0);\n"
    "  if (i < n - 1) out[i] = (float)i;\n"
    "}\n"
    "__kernel void overrun(__global float *out, int n) {\n" /* writes out[n] too */
    "  int i = get_global_id(0);\n"
    "  if (i <= n) out[i] = 1.0f;\n"
    "}\n"
    "__kernel void underrun(__global float *out, int n) {\n" /* writes out[-1] */
    "  int i = get_global_id(0);\n"
    "  if (i < n) out[i - 1] = 1.0f;\n"
    "}\n"
    "__kernel void nothing(__global uchar *out) { (void)out; }\n"
    "__kernel void big_local(__global float *out) {\n"
    "  __local float tile[64];\n"
    "  tile[get_local_id(0) % 64] = 1.0f;\n"
    "  barrier(CLK_LOCAL_MEM_FENCE);\n"
    "  out[get_global_id(0)] = tile[0];\n"
    "}\n";

enum { N = 1000, LOCAL = 64, GROUPS = (N + LOCAL - 1) / LOCAL };

static const float bias4[4] = {1.0f, 2.0f, 3.0f, 4.0f};

static void fill_inputs(float *x, float *y, int seed) {
  for (int i = 0; i < N; i++) {
    x[i] = (float)((i * 7 + seed) % 101 - 50);
    y[i] = (float)((i * 13 + 3 * seed) % 89 - 44);
  }
}

/* x, y, bias -> t = x + y + bias; t *= 3; out = t + x + bias (vadd used twice, one kernel). */
static void test_plan_vadd(void **state) {
  (void)state;
  const xrt_buffer_desc bufs[] = {
      {"x", N * 4, XRT_BUF_INPUT, 0, NULL},
      {"y", N * 4, XRT_BUF_INPUT, 1, NULL},
      {"bias", sizeof bias4, XRT_BUF_CONST, 0, bias4},
      {"t", N * 4, XRT_BUF_TEMP, 0, NULL},
      {"out", N * 4, XRT_BUF_OUTPUT, 0, NULL},
  };
  const xrt_arg_desc a0[] = {{XRT_ARG_BUFFER, 0}, {XRT_ARG_BUFFER, 1}, {XRT_ARG_BUFFER, 2},
                             {XRT_ARG_BUFFER, 3}, {XRT_ARG_INT, N}};
  const xrt_arg_desc a1[] = {{XRT_ARG_BUFFER, 3}, {XRT_ARG_INT, N}, {XRT_ARG_INT, 3}};
  const xrt_arg_desc a2[] = {{XRT_ARG_BUFFER, 3}, {XRT_ARG_BUFFER, 0}, {XRT_ARG_BUFFER, 2},
                             {XRT_ARG_BUFFER, 4}, {XRT_ARG_INT, N}};
  const xrt_step_desc steps[] = {
      {"vadd", {GROUPS, 1, 1}, LOCAL, 5, a0, 2.0 * N, 16.0 * N},
      {"scale", {GROUPS, 1, 1}, LOCAL, 3, a1, 1.0 * N, 8.0 * N},
      {"vadd", {GROUPS, 1, 1}, LOCAL, 5, a2, 2.0 * N, 16.0 * N},
  };
  const xrt_plan_desc desc = {"vadd3", plan_source, "", 5, bufs, 3, steps, 2, 1};
  /* Every combination of options computes the same thing. */
  for (int mode = 0; mode < 8; mode++) {
    xrt_plan_options opt = {mode & 1, (mode >> 1) & 1, (mode >> 2) & 1};
    xrt_plan *plan = NULL;
    ASSERT_OK(xrt_plan_create(g_ctx, &desc, &opt, &plan, &g_err), &g_err);
    static float x[N], y[N], out[N];
    for (int seed = 1; seed <= 2; seed++) {
      fill_inputs(x, y, seed + mode);
      const void *in[] = {x, y};
      void *outs[] = {out};
      ASSERT_OK(xrt_plan_run(plan, in, outs, &g_err), &g_err);
      for (int i = 0; i < N; i++) {
        float want = 3.0f * (x[i] + y[i] + bias4[i % 4]) + x[i] + bias4[i % 4];
        if (out[i] != want)
          fail_msg("mode %d seed %d: out[%d] = %g, want %g", mode, seed, i, (double)out[i],
                   (double)want);
      }
    }
    xrt_plan_release(plan);
  }
}

static void test_plan_poison(void **state) {
  (void)state;
  const xrt_buffer_desc bufs[] = {
      {"out", N * 4, XRT_BUF_OUTPUT, 0, NULL},
      {"odd", 6, XRT_BUF_OUTPUT, 1, NULL}, /* not a multiple of 4 bytes */
  };
  const xrt_arg_desc a0[] = {{XRT_ARG_BUFFER, 0}, {XRT_ARG_INT, N}};
  const xrt_arg_desc a1[] = {{XRT_ARG_BUFFER, 1}};
  const xrt_step_desc steps[] = {
      {"partial", {GROUPS, 1, 1}, LOCAL, 2, a0, 0, 0},
      {"nothing", {1, 1, 1}, 1, 1, a1, 0, 0},
  };
  const xrt_plan_desc desc = {"poison", plan_source, "", 2, bufs, 2, steps, 0, 2};
  xrt_plan_options opt = {0, 1, 0};
  xrt_plan *plan = NULL;
  ASSERT_OK(xrt_plan_create(g_ctx, &desc, &opt, &plan, &g_err), &g_err);
  static float out[N];
  unsigned char odd[6];
  for (int run = 0; run < 2; run++) {
    memset(out, 0, sizeof out);
    memset(odd, 0, sizeof odd);
    void *outs[] = {out, odd};
    ASSERT_OK(xrt_plan_run(plan, NULL, outs, &g_err), &g_err);
    for (int i = 0; i < N - 1; i++)
      assert_true(out[i] == (float)i);
    assert_true(isnan(out[N - 1]));
    float head;
    memcpy(&head, odd, 4);
    assert_true(isnan(head));
  }
  xrt_plan_release(plan);
}

static int run_one_kernel(const char *kernel, int guard, int n_elems) {
  const xrt_buffer_desc bufs[] = {
      {"before", 64, XRT_BUF_TEMP, 0, NULL},
      {"victim", (uint64_t)n_elems * 4, XRT_BUF_OUTPUT, 0, NULL},
      {"after", 64, XRT_BUF_TEMP, 0, NULL},
  };
  const xrt_arg_desc args[] = {{XRT_ARG_BUFFER, 1}, {XRT_ARG_INT, n_elems}};
  const xrt_step_desc steps[] = {
      {kernel, {(uint64_t)(n_elems / LOCAL + 1), 1, 1}, LOCAL, 2, args, 0, 0}};
  const xrt_plan_desc desc = {"guard", plan_source, "", 3, bufs, 1, steps, 0, 1};
  xrt_plan_options opt = {0, 1, guard};
  xrt_plan *plan = NULL;
  ASSERT_OK(xrt_plan_create(g_ctx, &desc, &opt, &plan, &g_err), &g_err);
  float *out = calloc((size_t)n_elems, sizeof *out);
  assert_non_null(out);
  void *outs[] = {out};
  int rc = xrt_plan_run(plan, NULL, outs, &g_err);
  if (rc == XRT_E_GUARD) {
    /* The canaries were re-armed: the next run reports its own overrun again. */
    static char first[XRT_ERROR_MAX];
    memcpy(first, g_err.message, sizeof first);
    assert_int_equal(xrt_plan_run(plan, NULL, outs, &g_err), XRT_E_GUARD);
    assert_string_equal(first, g_err.message);
  }
  free(out);
  xrt_plan_release(plan);
  return rc;
}

static void test_plan_guard(void **state) {
  (void)state;
  assert_int_equal(run_one_kernel("partial", 1, N), XRT_OK);

  assert_int_equal(run_one_kernel("overrun", 1, N), XRT_E_GUARD);
  assert_int_equal(g_err.code, XRT_E_GUARD);
  ASSERT_HAS(g_err.message, "'victim'");
  ASSERT_HAS(g_err.message, "after");
  ASSERT_HAS(g_err.message, "at byte 0 past its end");

  assert_int_equal(run_one_kernel("underrun", 1, N), XRT_E_GUARD);
  ASSERT_HAS(g_err.message, "'victim'");
  ASSERT_HAS(g_err.message, "before");
  ASSERT_HAS(g_err.message, "4 bytes before its start");

  /* A size that is not a multiple of the alignment. */
  assert_int_equal(run_one_kernel("overrun", 1, 37), XRT_E_GUARD);
  ASSERT_HAS(g_err.message, "after");
}

static void test_plan_profile(void **state) {
  (void)state;
  const xrt_buffer_desc bufs[] = {{"t", N * 4, XRT_BUF_TEMP, 0, NULL}};
  const xrt_arg_desc a0[] = {{XRT_ARG_BUFFER, 0}, {XRT_ARG_INT, N}};
  const xrt_arg_desc a1[] = {{XRT_ARG_BUFFER, 0}, {XRT_ARG_INT, N}, {XRT_ARG_INT, 2}};
  const xrt_step_desc steps[] = {
      {"partial", {GROUPS, 1, 1}, LOCAL, 2, a0, 0, 0},
      {"scale", {GROUPS, 1, 1}, LOCAL, 3, a1, 0, 0},
  };
  const xrt_plan_desc desc = {"profile", plan_source, "", 1, bufs, 2, steps, 0, 0};
  double ms[2] = {0, 0};

  xrt_plan_options opt = {1, 0, 0};
  xrt_plan *plan = NULL;
  ASSERT_OK(xrt_plan_create(g_ctx, &desc, &opt, &plan, &g_err), &g_err);
  assert_int_equal(xrt_plan_step_times(plan, ms, &g_err), XRT_E_ARG); /* nothing ran yet */
  ASSERT_OK(xrt_plan_execute(plan, &g_err), &g_err);
  ASSERT_OK(xrt_plan_step_times(plan, ms, &g_err), &g_err);
  fprintf(stderr, "step times: %.4f ms, %.4f ms\n", ms[0], ms[1]);
  assert_true(ms[0] > 0 && isfinite(ms[0]));
  assert_true(ms[1] > 0 && isfinite(ms[1]));
  xrt_plan_release(plan);

  opt.profile = 0;
  ASSERT_OK(xrt_plan_create(g_ctx, &desc, &opt, &plan, &g_err), &g_err);
  ASSERT_OK(xrt_plan_execute(plan, &g_err), &g_err);
  assert_int_equal(xrt_plan_step_times(plan, ms, &g_err), XRT_E_ARG);
  xrt_plan_release(plan);
}

/* A kernel that would write outside its buffer if launched at all: the limit must stop it
 * at creation. */
static void test_plan_limits(void **state) {
  (void)state;
  const xrt_device_info *dev = xrt_context_device(g_ctx);
  char num[64];

  uint32_t too_wide = (uint32_t)(dev->max_work_group_size * 2);
  const xrt_buffer_desc bufs[] = {{"out", 4, XRT_BUF_OUTPUT, 0, NULL}};
  const xrt_arg_desc args[] = {{XRT_ARG_BUFFER, 0}, {XRT_ARG_INT, 1}};
  const xrt_step_desc wide[] = {{"overrun", {1, 1, 1}, too_wide, 2, args, 0, 0}};
  const xrt_plan_desc d1 = {"wide", plan_source, "", 1, bufs, 1, wide, 0, 1};
  xrt_plan *plan = (xrt_plan *)&g_err;
  assert_int_equal(xrt_plan_create(g_ctx, &d1, NULL, &plan, &g_err), XRT_E_LIMIT);
  assert_null(plan);
  ASSERT_HAS(g_err.message, "overrun");
  snprintf(num, sizeof num, "%u", too_wide);
  ASSERT_HAS(g_err.message, num);
  snprintf(num, sizeof num, "%zu", dev->max_work_group_size);
  ASSERT_HAS(g_err.message, num);

  const xrt_buffer_desc huge[] = {{"huge", dev->max_alloc_bytes + 1, XRT_BUF_OUTPUT, 0, NULL}};
  const xrt_step_desc ok[] = {{"overrun", {1, 1, 1}, 1, 2, args, 0, 0}};
  const xrt_plan_desc d2 = {"huge", plan_source, "", 1, huge, 1, ok, 0, 1};
  assert_int_equal(xrt_plan_create(g_ctx, &d2, NULL, &plan, &g_err), XRT_E_LIMIT);
  ASSERT_HAS(g_err.message, "'huge'");
  snprintf(num, sizeof num, "%llu", (unsigned long long)dev->max_alloc_bytes + 1);
  ASSERT_HAS(g_err.message, num);
  snprintf(num, sizeof num, "%llu", (unsigned long long)dev->max_alloc_bytes);
  ASSERT_HAS(g_err.message, num);

  /* Exactly max_alloc fits without guard, not with its canaries. */
  const xrt_buffer_desc edge[] = {{"edge", dev->max_alloc_bytes, XRT_BUF_OUTPUT, 0, NULL}};
  const xrt_plan_desc d3 = {"edge", plan_source, "", 1, edge, 1, ok, 0, 1};
  xrt_plan_options guard = {0, 0, 1};
  assert_int_equal(xrt_plan_create(g_ctx, &d3, &guard, &plan, &g_err), XRT_E_LIMIT);
  ASSERT_HAS(g_err.message, "guard");

  /* Global size overflow. */
  const xrt_step_desc over[] = {{"overrun", {UINT64_MAX / 2, 1, 1}, 4, 2, args, 0, 0}};
  const xrt_plan_desc d4 = {"over", plan_source, "", 1, bufs, 1, over, 0, 1};
  assert_int_equal(xrt_plan_create(g_ctx, &d4, NULL, &plan, &g_err), XRT_E_LIMIT);
  ASSERT_HAS(g_err.message, "size_t");
}

static void expect_arg_error(const xrt_plan_desc *d, const char *part) {
  xrt_plan *plan = (xrt_plan *)&g_err;
  int rc = xrt_plan_create(g_ctx, d, NULL, &plan, &g_err);
  if (rc != XRT_E_ARG)
    fail_msg("plan '%s': rc %d, want XRT_E_ARG: %s", d->name, rc, g_err.message);
  assert_null(plan);
  ASSERT_HAS(g_err.message, part);
}

static void test_plan_desc_errors(void **state) {
  (void)state;
  const xrt_buffer_desc bufs[] = {{"out", 4, XRT_BUF_OUTPUT, 0, NULL}};
  const xrt_buffer_desc dup[] = {{"o1", 4, XRT_BUF_OUTPUT, 0, NULL},
                                 {"o2", 4, XRT_BUF_OUTPUT, 0, NULL}};
  const xrt_buffer_desc one_out[] = {{"out", 4, XRT_BUF_OUTPUT, 0, NULL},
                                     {"t", 4, XRT_BUF_TEMP, 0, NULL}};
  const xrt_buffer_desc far[] = {{"far", 4, XRT_BUF_OUTPUT, 5, NULL}};
  const xrt_buffer_desc nodata[] = {{"k", 4, XRT_BUF_CONST, 0, NULL}};
  const xrt_arg_desc args[] = {{XRT_ARG_BUFFER, 0}, {XRT_ARG_INT, 1}};
  const xrt_arg_desc bad_buf[] = {{XRT_ARG_BUFFER, 7}, {XRT_ARG_INT, 1}};
  const xrt_arg_desc bad_int[] = {{XRT_ARG_BUFFER, 0}, {XRT_ARG_INT, (int64_t)1 << 40}};
  const xrt_step_desc ok[] = {{"overrun", {1, 1, 1}, 1, 2, args, 0, 0}};
  const xrt_step_desc zero_groups[] = {{"overrun", {1, 0, 1}, 1, 2, args, 0, 0}};
  const xrt_step_desc s_bad_buf[] = {{"overrun", {1, 1, 1}, 1, 2, bad_buf, 0, 0}};
  const xrt_step_desc s_bad_int[] = {{"overrun", {1, 1, 1}, 1, 2, bad_int, 0, 0}};
  const xrt_step_desc no_kernel[] = {{"no_such_kernel", {1, 1, 1}, 1, 2, args, 0, 0}};
  const xrt_step_desc few_args[] = {{"overrun", {1, 1, 1}, 1, 1, args, 0, 0}};

  const xrt_plan_desc cases[] = {
      {"dup", plan_source, "", 2, dup, 1, ok, 0, 2},
      {"far", plan_source, "", 1, far, 1, ok, 0, 1},
      {"missing", plan_source, "", 2, one_out, 1, ok, 0, 2},
      {"nodata", plan_source, "", 1, nodata, 1, ok, 0, 0},
      {"zero_groups", plan_source, "", 1, bufs, 1, zero_groups, 0, 1},
      {"bad_buf", plan_source, "", 1, bufs, 1, s_bad_buf, 0, 1},
      {"bad_int", plan_source, "", 1, bufs, 1, s_bad_int, 0, 1},
      {"no_kernel", plan_source, "", 1, bufs, 1, no_kernel, 0, 1},
      {"few_args", plan_source, "", 1, bufs, 1, few_args, 0, 1},
  };
  const char *parts[] = {"share io_index", "io_index 5", "no output buffer has io_index 1",
                         "no data", "groups[1] = 0", "buffer 7", "cl_int",
                         "no_such_kernel", "passes 1 arguments"};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    expect_arg_error(&cases[i], parts[i]);
}

static void test_plan_zero_bytes(void **state) {
  (void)state;
  const xrt_buffer_desc bufs[] = {
      {"empty_in", 0, XRT_BUF_INPUT, 0, NULL},
      {"empty_out", 0, XRT_BUF_OUTPUT, 0, NULL},
      {"empty_const", 0, XRT_BUF_CONST, 0, NULL},
  };
  const xrt_arg_desc args[] = {{XRT_ARG_BUFFER, 1}};
  const xrt_step_desc steps[] = {{"nothing", {1, 1, 1}, 1, 1, args, 0, 0}};
  const xrt_plan_desc desc = {"zero", plan_source, "", 3, bufs, 1, steps, 1, 1};
  xrt_plan_options opt = {1, 1, 1};
  xrt_plan *plan = NULL;
  ASSERT_OK(xrt_plan_create(g_ctx, &desc, &opt, &plan, &g_err), &g_err);
  const void *in[] = {NULL};
  void *out[] = {NULL};
  ASSERT_OK(xrt_plan_run(plan, in, out, &g_err), &g_err);
  xrt_plan_release(plan);
}

static void test_plan_local_mem(void **state) {
  (void)state;
  const xrt_buffer_desc bufs[] = {{"out", 64 * 4, XRT_BUF_OUTPUT, 0, NULL}};
  const xrt_arg_desc args[] = {{XRT_ARG_BUFFER, 0}};
  const xrt_step_desc steps[] = {{"big_local", {1, 1, 1}, 64, 1, args, 0, 0}};
  const xrt_plan_desc desc = {"local", plan_source, "", 1, bufs, 1, steps, 0, 1};
  xrt_plan *plan = NULL;
  ASSERT_OK(xrt_plan_create(g_ctx, &desc, NULL, &plan, &g_err), &g_err);
  float out[64];
  void *outs[] = {out};
  ASSERT_OK(xrt_plan_run(plan, NULL, outs, &g_err), &g_err);
  for (int i = 0; i < 64; i++)
    assert_true(out[i] == 1.0f);
  xrt_plan_release(plan);
}

/* ------------------------------------------------------------------ calibration */

static void test_calibrate(void **state) {
  (void)state;
  xrt_calibration cal = {0, 0};
  ASSERT_OK(xrt_calibrate(g_ctx, &cal, &g_err), &g_err);
  fprintf(stderr, "calibration on %s: copy %.2f GB/s, fma %.2f GFLOP/s\n",
          xrt_context_device(g_ctx)->name, cal.copy_gbs, cal.fma_gflops);
  assert_true(cal.copy_gbs > 0 && isfinite(cal.copy_gbs));
  assert_true(cal.fma_gflops > 0 && isfinite(cal.fma_gflops));
}

static void test_bad_args(void **state) {
  (void)state;
  assert_int_equal(xrt_devices(NULL, NULL, &g_err), XRT_E_ARG);
  assert_int_equal(xrt_context_create("0", NULL, &g_err), XRT_E_ARG);
  xrt_program *p = NULL;
  assert_int_equal(xrt_program_build(g_ctx, NULL, "", &p, &g_err), XRT_E_ARG);
  assert_int_equal(xrt_program_from_cache(NULL), 0);
  xrt_plan *plan = NULL;
  assert_int_equal(xrt_plan_create(g_ctx, NULL, NULL, &plan, &g_err), XRT_E_ARG);
  assert_int_equal(xrt_plan_execute(NULL, &g_err), XRT_E_ARG);
  assert_int_equal(xrt_calibrate(g_ctx, NULL, &g_err), XRT_E_ARG);
  /* A NULL error pointer is allowed: only the code comes back. */
  assert_int_equal(xrt_context_create("no-such-device-xyz", &(xrt_context *){NULL}, NULL),
                   XRT_E_DEVICE);
  assert_null(xrt_context_device(NULL));
  xrt_context_release(NULL);
  xrt_program_release(NULL);
  xrt_plan_release(NULL);
  xrt_devices_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_devices_list),     cmocka_unit_test(test_selectors),
      cmocka_unit_test(test_selector_bad),     cmocka_unit_test(test_selector_env),
      cmocka_unit_test(test_bad_args),         cmocka_unit_test(test_build_error),
      cmocka_unit_test(test_cache_hit_miss),   cmocka_unit_test(test_cache_damage),
      cmocka_unit_test(test_cache_full_key),   cmocka_unit_test(test_cache_off),
      cmocka_unit_test(test_cache_location),   cmocka_unit_test(test_plan_vadd),
      cmocka_unit_test(test_plan_poison),      cmocka_unit_test(test_plan_guard),
      cmocka_unit_test(test_plan_profile),     cmocka_unit_test(test_plan_limits),
      cmocka_unit_test(test_plan_desc_errors), cmocka_unit_test(test_plan_zero_bytes),
      cmocka_unit_test(test_plan_local_mem),   cmocka_unit_test(test_calibrate),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
