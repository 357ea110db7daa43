/* compile.c: xy_compile and the program it returns: the pipeline, then the targets'
 * renderers and package emitters. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "package.h"
#include "pipeline.h"
#include "program.h"
#include "render.h"
#include "xylem_version.h"

const char *xy_version(void)
{
  return XYLEM_VERSION;
}

void xy_device_limits_default(xy_device_limits *dev)
{
  /* What every OpenCL 1.2 full-profile device offers. */
  dev->local_mem_bytes = 32768;
  dev->max_work_group_size = 256;
  dev->max_alloc_bytes = 128u << 20;
  dev->compute_units = 1;
  dev->is_gpu = 0;
  dev->is_cpu = 0;
}

void xy_device_limits_of(const xrt_device_info *info, xy_device_limits *dev)
{
  dev->local_mem_bytes = info->local_mem_bytes;
  dev->max_work_group_size = info->max_work_group_size;
  dev->max_alloc_bytes = info->max_alloc_bytes;
  dev->compute_units = info->compute_units;
  dev->is_gpu = info->is_gpu;
  dev->is_cpu = info->is_cpu;
}

void xy_device_limits_host(xy_device_limits *dev)
{
  xy_device_limits_default(dev);
  dev->local_mem_bytes = 256u << 10;
  dev->max_work_group_size = 1024;
  dev->max_alloc_bytes = 1ull << 40;
  dev->is_cpu = 1;
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  dev->compute_units = cpus > 0 ? (unsigned)cpus : 1;
}

void xy_compile_options_default(xy_compile_options *opt)
{
  memset(opt, 0, sizeof *opt);
  opt->target = XY_TARGET_OPENCL;
  xy_device_limits_default(&opt->device);
}

static bool is_identifier(const char *s)
{
  if (!s || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
    return false;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && *s != '_')
      return false;
  return true;
}

void xy_program_free(xy_program *p)
{
  if (!p)
    return;
  plan_storage_free(&p->plan_store);
  kir_module_free(p->k);
  free(p->name);
  free(p->kernel_source);
  free(p->package_c);
  free(p->package_h);
  free(p->plan_json);
  free(p->build_options);
  free(p);
}

static void tensor_info(const ir_module *m, int t, pkg_tensor *out)
{
  const ir_tensor *x = &m->tensors[t];
  out->name = x->name;
  out->count = ir_shape_count(&x->shape);
  xy_buf b;
  xy_buf_init(&b);
  ir_shape_print(&x->shape, &b);
  snprintf(out->shape, sizeof out->shape, "%s", b.data ? b.data : "?");
  xy_buf_free(&b);
}

static int emit(xy_program *p, const ir_module *m, xy_error *err)
{
  xy_buf src;
  xy_buf_init(&src);
  xy_render_kernels(p->k, p->target == XY_TARGET_OPENCL ? &xy_dialect_opencl : &xy_dialect_c99,
                    &src);
  p->kernel_source = xy_buf_take(&src);
  /* -w: device compilers warn about their own builtins (PoCL: the ABI of float16 on CPUs
   * without AVX-512); our kernels are held to zero warnings by the libclang tests. */
  p->build_options = xy_strdup("-cl-std=CL1.2 -w");
  if (!p->kernel_source || !p->build_options)
    return xy_fail(err, XY_E_NOMEM, "out of memory rendering kernels");
  int rc = plan_build(p->k, p->target == XY_TARGET_OPENCL ? p->kernel_source : NULL,
                      p->build_options, &p->plan, &p->plan_store, err);
  if (rc)
    return rc;

  pkg_tensor *ins = calloc((size_t)m->n_inputs + 1, sizeof *ins);
  pkg_tensor *outs = calloc((size_t)m->n_outputs + 1, sizeof *outs);
  if (!ins || !outs) {
    free(ins);
    free(outs);
    return xy_fail(err, XY_E_NOMEM, "out of memory");
  }
  for (int i = 0; i < m->n_inputs; i++)
    tensor_info(m, m->inputs[i], &ins[i]);
  for (int i = 0; i < m->n_outputs; i++)
    tensor_info(m, m->outputs[i], &outs[i]);
  pkg_info pkg = {.name = p->name, .spec_path = m->spec_path, .inputs = ins,
                  .n_inputs = m->n_inputs, .outputs = outs, .n_outputs = m->n_outputs};
  xy_buf c, h, j;
  xy_buf_init(&c);
  xy_buf_init(&h);
  xy_buf_init(&j);
  if (p->target == XY_TARGET_OPENCL)
    rc = emit_opencl_package(&pkg, &p->plan, &c, &h);
  else
    rc = emit_c_package(&pkg, p->k, &p->plan, p->kernel_source, &c, &h);
  plan_json(&p->plan, p->target == XY_TARGET_OPENCL ? "opencl" : "c", p->k->forms, &j);
  free(ins);
  free(outs);
  p->package_c = xy_buf_take(&c);
  p->package_h = xy_buf_take(&h);
  p->plan_json = xy_buf_take(&j);
  if (rc || !p->package_c || !p->package_h || !p->plan_json)
    return xy_fail(err, XY_E_NOMEM, "out of memory writing the package");
  return XY_OK;
}

int xy_compile(const xy_model *model, const xy_compile_options *opt, xy_program **out,
               xy_error *err)
{
  *out = NULL;
  const char *name = opt->name ? opt->name : model->m->name;
  if (!is_identifier(name))
    return xy_fail(err, XY_E_USAGE, "package name '%s' is not a C identifier", name);
  xy_program *p = calloc(1, sizeof *p);
  ir_module *m = ir_module_clone(model->m);
  if (!p || !m || !(p->name = xy_strdup(name))) {
    xy_program_free(p);
    ir_module_free(m);
    return xy_fail(err, XY_E_NOMEM, "out of memory");
  }
  p->target = opt->target;
  pass_state ps = {.m = m, .opt = opt, .name = name};
  int rc = pipeline_run(&ps, err);
  p->k = ps.k;
  if (!rc)
    rc = emit(p, m, err);
  ir_module_free(m);
  if (rc) {
    xy_program_free(p);
    return rc;
  }
  *out = p;
  return XY_OK;
}

const char *xy_program_name(const xy_program *p)
{
  return p->name;
}

xy_target xy_program_target(const xy_program *p)
{
  return p->target;
}

const char *xy_program_forms(const xy_program *p)
{
  return p->k->forms ? p->k->forms : "";
}

const char *xy_program_kernel_source(const xy_program *p)
{
  return p->kernel_source;
}

const xrt_plan_desc *xy_program_plan(const xy_program *p)
{
  return &p->plan;
}

/* All files of a package are written to temporaries first and renamed together, so a
 * failure leaves none of them behind. */
int xy_program_write(const xy_program *p, const char *dir, xy_error *err)
{
  struct stat st;
  if (stat(dir, &st) != 0) {
    if (mkdir(dir, 0755) != 0)
      return xy_fail(err, XY_E_IO, "%s: cannot create directory: %s", dir, strerror(errno));
  } else if (!S_ISDIR(st.st_mode)) {
    return xy_fail(err, XY_E_IO, "%s: not a directory", dir);
  }
  const char *exts[] = {".c", ".h", ".plan.json", ".cl"};
  const char *texts[] = {p->package_c, p->package_h, p->plan_json, p->kernel_source};
  int n = p->target == XY_TARGET_OPENCL ? 4 : 3;
  char final[4][4096], tmp[4][4096];
  int made = 0, rc = XY_OK;
  for (int i = 0; i < n && !rc; i++) {
    snprintf(final[i], sizeof final[i], "%s/%s%s", dir, p->name, exts[i]);
    snprintf(tmp[i], sizeof tmp[i], "%s.tmp.XXXXXX", final[i]);
    int fd = mkstemp(tmp[i]);
    if (fd < 0) {
      rc = xy_fail(err, XY_E_IO, "%s: cannot create: %s", final[i], strerror(errno));
      break;
    }
    made++;
    size_t len = strlen(texts[i]);
    bool ok = write(fd, texts[i], len) == (ssize_t)len && fchmod(fd, 0644) == 0;
    ok = (close(fd) == 0) && ok;
    if (!ok)
      rc = xy_fail(err, XY_E_IO, "%s: write failed: %s", final[i], strerror(errno));
  }
  for (int i = 0; i < made; i++) {
    if (!rc && rename(tmp[i], final[i]) != 0)
      rc = xy_fail(err, XY_E_IO, "%s: cannot write: %s", final[i], strerror(errno));
    if (rc)
      unlink(tmp[i]);
  }
  return rc;
}
