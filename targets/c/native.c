/* native.c: the C target in-process. The package is compiled by spawning clang into a
 * shared object in a private temporary directory, which is then loaded with dlopen. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "program.h"
#include "xylem_version.h"

extern char **environ;

typedef int (*native_run_fn)(const float *const *, float *const *, unsigned, double *);

struct xy_native {
  void *handle;
  native_run_fn run;
};

static int write_in(const char *dir, const char *name, const char *ext, const char *text,
                    char *path, size_t n, xy_error *err)
{
  snprintf(path, n, "%s/%s%s", dir, name, ext);
  return xy_write_file_atomic(path, text, strlen(text), err);
}

/* Runs argv, with stdout and stderr into log_path; returns the exit status or -1. */
static int spawn_wait(char *const argv[], const char *log_path)
{
  posix_spawn_file_actions_t fa;
  if (posix_spawn_file_actions_init(&fa) != 0)
    return -1;
  posix_spawn_file_actions_addopen(&fa, 1, log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0)
    return -1;
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void remove_dir(const char *dir, const char *name)
{
  static const char *const exts[] = {".c", ".h", ".so", ".log"};
  char path[4200];
  for (size_t i = 0; i < XY_ARRAY_LEN(exts); i++) {
    snprintf(path, sizeof path, "%s/%s%s", dir, name, exts[i]);
    unlink(path);
  }
  rmdir(dir);
}

int xy_native_load(const xy_program *prog, xy_native **out, xy_error *err)
{
  *out = NULL;
  if (prog->target != XY_TARGET_C)
    return xy_fail(err, XY_E_USAGE, "%s: not compiled for the C target", prog->name);
  const char *tmp = getenv("TMPDIR");
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/xylem-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
  if (!mkdtemp(dir))
    return xy_fail(err, XY_E_IO, "cannot create a temporary directory: %s", strerror(errno));
  char cpath[4200], hpath[4200], sopath[4200], logpath[4200];
  int rc = write_in(dir, prog->name, ".c", prog->package_c, cpath, sizeof cpath, err);
  if (!rc)
    rc = write_in(dir, prog->name, ".h", prog->package_h, hpath, sizeof hpath, err);
  snprintf(sopath, sizeof sopath, "%s/%s.so", dir, prog->name);
  snprintf(logpath, sizeof logpath, "%s/%s.log", dir, prog->name);
  const char *cc = getenv("XYLEM_CC");
  if (!cc || !cc[0])
    cc = XYLEM_DEFAULT_CC;
  const char *flags = getenv("XYLEM_CFLAGS");
  char flagbuf[1024];
  snprintf(flagbuf, sizeof flagbuf, "%s", flags && flags[0] ? flags : "-O2 -march=native");
  if (!rc) {
    char *argv[48];
    int argc = 0;
    argv[argc++] = (char *)cc;
    argv[argc++] = "-std=c99";
    for (char *f = strtok(flagbuf, " "); f && argc < 36; f = strtok(NULL, " "))
      argv[argc++] = f;
    argv[argc++] = "-fPIC";
    argv[argc++] = "-shared";
    argv[argc++] = "-o";
    argv[argc++] = sopath;
    argv[argc++] = cpath;
    argv[argc++] = "-lm";
    argv[argc] = NULL;
    int status = spawn_wait(argv, logpath);
    if (status != 0) {
      char *log = NULL;
      size_t len = 0;
      xy_error ignore;
      xy_read_file(logpath, 1 << 20, &log, &len, &ignore);
      rc = xy_fail(err, XY_E_TARGET, "%s: compiling the C package with '%s' failed%s%s%s",
                   prog->name, cc, status < 0 ? " (could not run it; set XYLEM_CC)" : ":\n",
                   log ? log : "", "");
      free(log);
    }
  }
  void *handle = NULL;
  native_run_fn run = NULL;
  if (!rc) {
    handle = dlopen(sopath, RTLD_NOW | RTLD_LOCAL);
    if (!handle)
      rc = xy_fail(err, XY_E_TARGET, "%s: cannot load the compiled package: %s", prog->name,
                   dlerror());
  }
  if (!rc) {
    char sym[256];
    snprintf(sym, sizeof sym, "%s_run", prog->name);
    *(void **)&run = dlsym(handle, sym);
    if (!run)
      rc = xy_fail(err, XY_E_TARGET, "%s: the compiled package has no %s", prog->name, sym);
  }
  remove_dir(dir, prog->name);
  if (rc) {
    if (handle)
      dlclose(handle);
    return rc;
  }
  xy_native *nat = calloc(1, sizeof *nat);
  if (!nat) {
    dlclose(handle);
    return xy_fail(err, XY_E_NOMEM, "out of memory");
  }
  nat->handle = handle;
  nat->run = run;
  *out = nat;
  return XY_OK;
}

void xy_native_free(xy_native *nat)
{
  if (!nat)
    return;
  dlclose(nat->handle);
  free(nat);
}

int xy_native_run(xy_native *nat, const void *const *inputs, void *const *outputs,
                  unsigned flags, double *step_ms, xy_error *err)
{
  if (nat->run((const float *const *)inputs, (float *const *)outputs, flags, step_ms) != 0)
    return xy_fail(err, XY_E_NOMEM, "the C package ran out of memory for its temporaries");
  return XY_OK;
}
