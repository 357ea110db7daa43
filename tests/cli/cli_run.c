#include "cli_run.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

extern char **environ;

char *slurp(const char *path)
{
  FILE *f = fopen(path, "rb");
  if (!f)
    return calloc(1, 1);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *p = calloc((size_t)n + 1, 1);
  if (p && fread(p, 1, (size_t)n, f) != (size_t)n)
    p[0] = '\0';
  fclose(f);
  return p;
}

result xylem(const char *first, ...)
{
  const char *bin = getenv("XYLEM_BIN");
  assert_non_null(bin);
  char *argv[64];
  int argc = 0;
  argv[argc++] = (char *)bin;
  va_list ap;
  va_start(ap, first);
  for (const char *a = first; a && argc < 63; a = va_arg(ap, const char *))
    argv[argc++] = (char *)a;
  va_end(ap);
  argv[argc] = NULL;
  char *out_path = harness_write("stdout.txt", ""), *err_path = harness_write("stderr.txt", "");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_TRUNC, 0);
  posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_TRUNC, 0);
  pid_t pid;
  assert_int_equal(posix_spawn(&pid, bin, &fa, NULL, argv, environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  int st;
  while (waitpid(pid, &st, 0) < 0)
    assert_int_equal(errno, EINTR);
  result r = {.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128, .out = slurp(out_path),
              .err = slurp(err_path)};
  free(out_path);
  free(err_path);
  return r;
}

void done(result *r)
{
  free(r->out);
  free(r->err);
}
