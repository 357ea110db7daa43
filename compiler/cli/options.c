/* options.c: one option parser for every subcommand; each names what it accepts. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef enum opt_kind { O_STR, O_INT, O_U64, O_DBL, O_FLAG, O_LIST } opt_kind;

typedef struct opt_def {
  const char *name;   /* long name, also the key in `allowed` */
  char short_name;
  opt_kind kind;
  size_t offset;      /* into cli_opts */
  size_t count_offset;/* O_LIST: the counter */
} opt_def;

#define OFF(f) offsetof(cli_opts, f)

static const opt_def defs[] = {
  {"target", 0, O_STR, OFF(target), 0},
  {"device", 0, O_STR, OFF(device), 0},
  {"form", 0, O_STR, OFF(form), 0},
  {"chunk", 0, O_INT, OFF(chunk), 0},
  {"lanes", 0, O_INT, OFF(lanes), 0},
  {"rows", 0, O_INT, OFF(rows), 0},
  {"wg", 0, O_INT, OFF(wg), 0},
  {"set", 0, O_LIST, OFF(overrides), OFF(n_overrides)},
  {"stage", 0, O_STR, OFF(stage), 0},
  {"output-dir", 'o', O_STR, OFF(out_dir), 0},
  {"name", 0, O_STR, OFF(name), 0},
  {"dump-after", 0, O_STR, OFF(dump_after), 0},
  {"input", 'i', O_LIST, OFF(inputs), OFF(n_inputs)},
  {"inputs", 0, O_STR, OFF(input_dir), 0},
  {"output", 0, O_LIST, OFF(outputs), OFF(n_outputs)},
  {"weights", 0, O_STR, OFF(weights), 0},
  {"seed", 0, O_U64, OFF(seed), 0},
  {"tol", 0, O_DBL, OFF(tol), 0},
  {"warmup", 0, O_INT, OFF(warmup), 0},
  {"runs", 0, O_INT, OFF(runs), 0},
  {"json", 0, O_FLAG, OFF(json), 0},
};

static bool allowed_in(const char *allowed, const char *name)
{
  size_t n = strlen(name);
  for (const char *p = allowed; (p = strstr(p, name)); p += n)
    if ((p == allowed || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
      return true;
  return false;
}

static bool parse_i64(const char *s, int64_t *out)
{
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end)
    return false;
  *out = v;
  return true;
}

static bool set_value(const opt_def *d, const char *cmd, const char *val, cli_opts *o)
{
  char *base = (char *)o;
  switch (d->kind) {
  case O_STR:
    if (strcmp(d->name, "target") == 0) {
      if (strcmp(val, "opencl") == 0)
        o->target = XY_TARGET_OPENCL;
      else if (strcmp(val, "c") == 0)
        o->target = XY_TARGET_C;
      else {
        fprintf(stderr, "xylem %s: --target must be opencl or c, not '%s'\n", cmd, val);
        return false;
      }
      return true;
    }
    *(const char **)(base + d->offset) = val;
    return true;
  case O_LIST: {
    size_t *n = (size_t *)(base + d->count_offset);
    if (*n >= CLI_MAX_LIST) {
      fprintf(stderr, "xylem %s: too many --%s options (at most %d)\n", cmd, d->name,
              CLI_MAX_LIST);
      return false;
    }
    ((const char **)(base + d->offset))[(*n)++] = val;
    return true;
  }
  case O_INT: {
    int64_t v;
    if (!parse_i64(val, &v) || v < 0 || (strcmp(d->name, "chunk") != 0 && v > 1000000)) {
      fprintf(stderr, "xylem %s: --%s needs a non-negative integer, not '%s'\n", cmd, d->name, val);
      return false;
    }
    if (strcmp(d->name, "chunk") == 0) {
      if (v < 1) {
        fprintf(stderr, "xylem %s: --chunk must be at least 1\n", cmd);
        return false;
      }
      o->chunk = v;
      return true;
    }
    if (strcmp(d->name, "lanes") == 0 && v != 1 && v != 2 && v != 4 && v != 8 && v != 16) {
      fprintf(stderr, "xylem %s: --lanes must be 1, 2, 4, 8 or 16\n", cmd);
      return false;
    }
    if ((strcmp(d->name, "rows") == 0 && (v < 1 || v > 16)) ||
        (strcmp(d->name, "wg") == 0 && (v < 1 || v > 4096))) {
      fprintf(stderr, "xylem %s: --%s must be in 1..%d\n", cmd, d->name,
              strcmp(d->name, "rows") == 0 ? 16 : 4096);
      return false;
    }
    *(int *)(base + d->offset) = (int)v;
    return true;
  }
  case O_U64: {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(val, &end, 0);
    if (errno || end == val || *end || val[0] == '-') {
      fprintf(stderr, "xylem %s: --%s needs an unsigned integer, not '%s'\n", cmd, d->name, val);
      return false;
    }
    o->seed = v;
    o->seed_set = true;
    return true;
  }
  case O_DBL: {
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    if (errno || end == val || *end || !(v > 0)) {
      fprintf(stderr, "xylem %s: --%s needs a positive number, not '%s'\n", cmd, d->name, val);
      return false;
    }
    *(double *)(base + d->offset) = v;
    return true;
  }
  case O_FLAG:
    break;
  }
  return false;
}

bool cli_parse(int argc, char **argv, int first, const char *cmd, const char *allowed,
               cli_opts *o)
{
  memset(o, 0, sizeof *o);
  o->target = XY_TARGET_OPENCL;
  o->tol = 1e-5;
  o->warmup = 3;
  o->runs = 20;
  for (int i = first; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-' || a[1] == '\0') {
      if (o->spec) {
        fprintf(stderr, "xylem %s: one spec file only (got '%s' and '%s')\n", cmd, o->spec, a);
        return false;
      }
      o->spec = a;
      continue;
    }
    const opt_def *d = NULL;
    const char *val = NULL;
    if (a[1] == '-') {
      const char *name = a + 2;
      const char *eq = strchr(name, '=');
      size_t len = eq ? (size_t)(eq - name) : strlen(name);
      for (size_t k = 0; k < sizeof defs / sizeof defs[0]; k++)
        if (strlen(defs[k].name) == len && strncmp(defs[k].name, name, len) == 0)
          d = &defs[k];
      if (eq)
        val = eq + 1;
    } else if (a[2] == '\0') {
      for (size_t k = 0; k < sizeof defs / sizeof defs[0]; k++)
        if (defs[k].short_name == a[1])
          d = &defs[k];
    }
    if (!d || !allowed_in(allowed, d->name)) {
      fprintf(stderr, "xylem %s: unknown option '%s' (see xylem %s --help)\n", cmd, a, cmd);
      return false;
    }
    if (d->kind == O_FLAG) {
      if (val) {
        fprintf(stderr, "xylem %s: --%s takes no value\n", cmd, d->name);
        return false;
      }
      *(bool *)((char *)o + d->offset) = true;
      continue;
    }
    if (!val) {
      if (i + 1 >= argc) {
        fprintf(stderr, "xylem %s: %s needs a value\n", cmd, a);
        return false;
      }
      val = argv[++i];
    }
    if (!set_value(d, cmd, val, o))
      return false;
  }
  if (!o->spec && strcmp(cmd, "devices") != 0) {
    fprintf(stderr, "xylem %s: no spec file given (see xylem %s --help)\n", cmd, cmd);
    return false;
  }
  return true;
}

int cli_report(const xy_error *err)
{
  fprintf(stderr, "xylem: %s\n", err->message);
  return err->code == XY_E_USAGE ? EXIT_USAGE : EXIT_FAIL;
}

int cli_report_rt(const xrt_error *err)
{
  fprintf(stderr, "xylem: %s\n", err->message);
  return EXIT_FAIL;
}
