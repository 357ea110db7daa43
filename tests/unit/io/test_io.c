/* test_io.c: the io unit tests (.npy, safetensors, random numbers) and their helpers. */
#include "io_test.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[512];

char *io_tmp_path(const char *name)
{
  if (!tmpdir[0]) {
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/xylem-io-test-XXXXXX", t && t[0] ? t : "/tmp");
    if (!mkdtemp(tmpdir))
      fail_msg("cannot create a temporary directory in %s", t && t[0] ? t : "/tmp");
  }
  size_t n = strlen(tmpdir) + strlen(name) + 2;
  char *path = malloc(n);
  assert_non_null(path);
  snprintf(path, n, "%s/%s", tmpdir, name);
  return path;
}

char *io_write_tmp(const char *name, const void *data, size_t len)
{
  char *path = io_tmp_path(name);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
  return path;
}

char *io_fixture(const char *name)
{
  size_t n = strlen(IO_FIXTURES) + strlen(name) + 2;
  char *path = malloc(n);
  assert_non_null(path);
  snprintf(path, n, "%s/%s", IO_FIXTURES, name);
  return path;
}

const char *io_data_dir(void)
{
  const char *d = getenv("XYLEM_TEST_DATA");
  return d && d[0] ? d : "tests/data";
}

void io_check_error(int rc, const xy_error *err, int code, const char *path,
                    const char *fragment)
{
  if (rc != code || err->code != code)
    fail_msg("expected code %d, got rc %d err.code %d: %s", code, rc, err->code,
             rc ? err->message : "(success)");
  size_t n = strlen(path);
  if (strncmp(err->message, path, n) != 0 || strncmp(err->message + n, ": ", 2) != 0)
    fail_msg("message does not start with '%s: ': %s", path, err->message);
  if (!strstr(err->message, fragment))
    fail_msg("message lacks '%s': %s", fragment, err->message);
}

/* Removes the temporary directory and what the tests left in it. */
static void remove_tmpdir(void)
{
  if (!tmpdir[0])
    return;
  DIR *d = opendir(tmpdir);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d))) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        continue;
      char path[1024];
      snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
      unlink(path);
    }
    closedir(d);
  }
  rmdir(tmpdir);
}

int main(void)
{
  int failed = io_run_npy();
  failed += io_run_safetensors();
  failed += io_run_rng();
  remove_tmpdir();
  return failed ? 1 : 0;
}
