/* plan.c: kernel IR's launch list as an xrt_plan_desc, and as JSON. */
#include "plan.h"

#include <stdlib.h>
#include <string.h>

void plan_storage_free(plan_storage *st)
{
  free(st->buffers);
  free(st->steps);
  free(st->args);
  memset(st, 0, sizeof *st);
}

static xrt_buffer_role role_of(kir_buf_role r)
{
  switch (r) {
  case KIR_BUF_INPUT: return XRT_BUF_INPUT;
  case KIR_BUF_OUTPUT: return XRT_BUF_OUTPUT;
  case KIR_BUF_CONST: return XRT_BUF_CONST;
  case KIR_BUF_TEMP: break;
  }
  return XRT_BUF_TEMP;
}

int plan_build(const kir_module *k, const char *source, const char *options,
               xrt_plan_desc *desc, plan_storage *st, xy_error *err)
{
  memset(desc, 0, sizeof *desc);
  memset(st, 0, sizeof *st);
  size_t n_args = 0;
  for (int i = 0; i < k->n_launches; i++)
    n_args += (size_t)k->launches[i].n_args;
  st->buffers = calloc((size_t)k->n_buffers + 1, sizeof *st->buffers);
  st->steps = calloc((size_t)k->n_launches + 1, sizeof *st->steps);
  st->args = calloc(n_args + 1, sizeof *st->args);
  if (!st->buffers || !st->steps || !st->args) {
    plan_storage_free(st);
    return xy_fail(err, XY_E_NOMEM, "out of memory building the plan");
  }
  uint32_t n_in = 0, n_out = 0;
  for (int i = 0; i < k->n_buffers; i++) {
    const kir_buffer *b = &k->buffers[i];
    xrt_buffer_desc *d = &st->buffers[i];
    d->name = b->name;
    d->bytes = (uint64_t)b->count * 4u;
    d->role = role_of(b->role);
    d->io_index = b->io_index;
    d->data = b->init;
    if (b->role == KIR_BUF_INPUT)
      n_in++;
    if (b->role == KIR_BUF_OUTPUT)
      n_out++;
  }
  xrt_arg_desc *a = st->args;
  for (int i = 0; i < k->n_launches; i++) {
    const kir_launch *l = &k->launches[i];
    const kir_kernel *kk = k->kernels[l->kernel];
    xrt_step_desc *s = &st->steps[i];
    s->kernel = kk->name;
    for (int x = 0; x < 3; x++)
      s->groups[x] = (uint64_t)l->groups[x];
    s->local_size = (uint32_t)kk->wg;
    s->n_args = (uint32_t)l->n_args;
    s->args = a;
    s->flops = l->flops;
    s->bytes = l->bytes;
    for (int j = 0; j < l->n_args; j++, a++) {
      a->kind = l->args[j].is_buffer ? XRT_ARG_BUFFER : XRT_ARG_INT;
      a->value = l->args[j].value;
    }
  }
  desc->name = k->name;
  desc->source = source;
  desc->build_options = options;
  desc->n_buffers = (uint32_t)k->n_buffers;
  desc->buffers = st->buffers;
  desc->n_steps = (uint32_t)k->n_launches;
  desc->steps = st->steps;
  desc->n_inputs = n_in;
  desc->n_outputs = n_out;
  return XY_OK;
}

static const char *role_name(xrt_buffer_role r)
{
  switch (r) {
  case XRT_BUF_INPUT: return "input";
  case XRT_BUF_OUTPUT: return "output";
  case XRT_BUF_TEMP: return "temp";
  case XRT_BUF_CONST: return "const";
  }
  return "?";
}

void plan_json(const xrt_plan_desc *desc, const char *target, const char *forms, xy_buf *out)
{
  xy_buf_printf(out, "{\n  \"xylem_plan\": 1,\n  \"name\": \"%s\",\n  \"target\": \"%s\",\n",
                desc->name, target);
  xy_buf_printf(out, "  \"forms\": \"%s\",\n  \"build_options\": \"%s\",\n  \"buffers\": [\n",
                forms ? forms : "", desc->build_options ? desc->build_options : "");
  for (uint32_t i = 0; i < desc->n_buffers; i++) {
    const xrt_buffer_desc *b = &desc->buffers[i];
    xy_buf_printf(out, "    {\"name\": \"%s\", \"role\": \"%s\", \"bytes\": %llu", b->name,
                  role_name(b->role), (unsigned long long)b->bytes);
    if (b->role == XRT_BUF_INPUT || b->role == XRT_BUF_OUTPUT)
      xy_buf_printf(out, ", \"io_index\": %d", b->io_index);
    xy_buf_printf(out, "}%s\n", i + 1 < desc->n_buffers ? "," : "");
  }
  xy_buf_puts(out, "  ],\n  \"steps\": [\n");
  for (uint32_t i = 0; i < desc->n_steps; i++) {
    const xrt_step_desc *s = &desc->steps[i];
    xy_buf_printf(out, "    {\"kernel\": \"%s\", \"groups\": [%llu, %llu, %llu], \"local_size\": %u, "
                  "\"args\": [", s->kernel, (unsigned long long)s->groups[0],
                  (unsigned long long)s->groups[1], (unsigned long long)s->groups[2],
                  s->local_size);
    for (uint32_t j = 0; j < s->n_args; j++)
      xy_buf_printf(out, "%s{\"%s\": %lld}", j ? ", " : "",
                    s->args[j].kind == XRT_ARG_BUFFER ? "buffer" : "int",
                    (long long)s->args[j].value);
    xy_buf_printf(out, "], \"flops\": %.0f, \"bytes\": %.0f}%s\n", s->flops, s->bytes,
                  i + 1 < desc->n_steps ? "," : "");
  }
  xy_buf_puts(out, "  ]\n}\n");
}

void c_string_literal(const char *s, xy_buf *out)
{
  xy_buf_putc(out, '"');
  for (; *s; s++) {
    switch (*s) {
    case '\\': xy_buf_puts(out, "\\\\"); break;
    case '"': xy_buf_puts(out, "\\\""); break;
    case '\n': xy_buf_puts(out, s[1] ? "\\n\"\n  \"" : "\\n"); break;
    case '\t': xy_buf_puts(out, "\\t"); break;
    default: xy_buf_putc(out, *s);
    }
  }
  xy_buf_putc(out, '"');
}
