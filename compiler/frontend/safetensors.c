/*
 * safetensors.c: an 8-byte little-endian header length N, N bytes of JSON header, then the
 * raw data section. The header maps tensor names to {dtype, shape, data_offsets} (offsets
 * relative to the data section) plus an optional "__metadata__" object.
 *
 * The whole file is read into memory once; tensors are views into it. Every entry is
 * checked when the file is opened, except the dtype: a tensor of a dtype xylem does not
 * read is an error only when it is asked for, so that files with extra tensors still list.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

typedef struct st_entry {
  char *name;
  char dtype_name[16];   /* as in the header, for messages */
  bool supported;        /* F32, F64, I32 or I64 */
  xy_dtype dtype;
  int rank;
  int64_t shape[XY_MAX_RANK];
  size_t count;
  size_t begin, end;     /* byte offsets in the data section */
  void *copy;            /* aligned copy when the data in the file is misaligned, else NULL */
} st_entry;

struct xy_safetensors {
  char *path;
  char *buf;             /* the whole file */
  size_t len;
  const char *data;      /* the data section, inside buf */
  size_t data_len;
  st_entry *entries;     /* in header order */
  size_t n;
};

static bool dtype_from_name(const char *s, xy_dtype *out)
{
  static const struct {
    const char *name;
    xy_dtype dtype;
  } known[] = {{"F32", XY_F32}, {"F64", XY_F64}, {"I32", XY_I32},
               {"I64", XY_I64}, {"F16", XY_F16}, {"BF16", XY_BF16}};
  for (size_t i = 0; i < XY_ARRAY_LEN(known); i++)
    if (strcmp(s, known[i].name) == 0) {
      *out = known[i].dtype;
      return true;
    }
  return false;
}

void xy_safetensors_close(xy_safetensors *st)
{
  if (!st)
    return;
  for (size_t i = 0; i < st->n; i++) {
    free(st->entries[i].name);
    free(st->entries[i].copy);
  }
  free(st->entries);
  free(st->buf);
  free(st->path);
  free(st);
}

/* A JSON integer that is a non-negative count. */
static bool json_count(const json_t *v, int64_t *out)
{
  if (!json_is_integer(v) || json_integer_value(v) < 0)
    return false;
  *out = (int64_t)json_integer_value(v);
  return true;
}

static int parse_shape(const json_t *shape, st_entry *e, const char *path, xy_error *err)
{
  if (!json_is_array(shape))
    return xy_fail(err, XY_E_PARSE, "%s: tensor '%s': 'shape' is not an array", path, e->name);
  if (json_array_size(shape) > XY_MAX_RANK)
    return xy_fail(err, XY_E_LIMIT, "%s: tensor '%s' has %zu dimensions, at most %d are supported",
                   path, e->name, json_array_size(shape), XY_MAX_RANK);
  e->rank = (int)json_array_size(shape);
  for (int d = 0; d < e->rank; d++)
    if (!json_count(json_array_get(shape, (size_t)d), &e->shape[d]))
      return xy_fail(err, XY_E_PARSE,
                     "%s: tensor '%s': shape entries must be non-negative integers", path,
                     e->name);
  int64_t count;
  char shp[256];
  if (!xy_product_i64(e->shape, e->rank, &count) || (uint64_t)count > SIZE_MAX)
    return xy_fail(err, XY_E_LIMIT, "%s: tensor '%s': shape %s is too large", path, e->name,
                   xy_shape_string(e->shape, e->rank, shp, sizeof shp));
  e->count = (size_t)count;
  return XY_OK;
}

static int parse_offsets(const json_t *offs, st_entry *e, size_t data_len, const char *path,
                         xy_error *err)
{
  int64_t b, en;
  if (!json_is_array(offs) || json_array_size(offs) != 2 ||
      !json_count(json_array_get(offs, 0), &b) || !json_count(json_array_get(offs, 1), &en) ||
      b > en)
    return xy_fail(err, XY_E_PARSE,
                   "%s: tensor '%s': 'data_offsets' must be [begin, end] with 0 <= begin <= end",
                   path, e->name);
  if ((uint64_t)en > data_len)
    return xy_fail(err, XY_E_PARSE,
                   "%s: tensor '%s': data_offsets [%" PRId64 ", %" PRId64 "] lie outside the "
                   "data section of %zu bytes", path, e->name, b, en, data_len);
  e->begin = (size_t)b;
  e->end = (size_t)en;
  if (!e->supported)
    return XY_OK;
  size_t need;
  char shp[256];
  if (!xy_mul_size(e->count, xy_dtype_size(e->dtype), &need))
    return xy_fail(err, XY_E_LIMIT, "%s: tensor '%s': shape %s is too large", path, e->name,
                   xy_shape_string(e->shape, e->rank, shp, sizeof shp));
  if (e->end - e->begin != need)
    return xy_fail(err, XY_E_PARSE,
                   "%s: tensor '%s': data_offsets [%zu, %zu] hold %zu bytes, shape %s of %s "
                   "needs %zu", path, e->name, e->begin, e->end, e->end - e->begin,
                   xy_shape_string(e->shape, e->rank, shp, sizeof shp), e->dtype_name, need);
  return XY_OK;
}

static int parse_entry(const char *name, const json_t *v, st_entry *e, size_t data_len,
                       const char *path, xy_error *err)
{
  e->name = xy_strdup(name);
  if (!e->name)
    return xy_fail(err, XY_E_NOMEM, "%s: out of memory", path);
  if (!json_is_object(v))
    return xy_fail(err, XY_E_PARSE, "%s: tensor '%s': entry is not an object", path, name);
  const json_t *dt = json_object_get(v, "dtype");
  if (!json_is_string(dt))
    return xy_fail(err, XY_E_PARSE, "%s: tensor '%s': 'dtype' is not a string", path, name);
  snprintf(e->dtype_name, sizeof e->dtype_name, "%s", json_string_value(dt));
  e->supported = dtype_from_name(json_string_value(dt), &e->dtype);
  int rc = parse_shape(json_object_get(v, "shape"), e, path, err);
  if (rc)
    return rc;
  return parse_offsets(json_object_get(v, "data_offsets"), e, data_len, path, err);
}

/* Views must be aligned for their element type; the data section need not be. */
static int align_entry(xy_safetensors *st, st_entry *e, xy_error *err)
{
  if (!e->supported)
    return XY_OK;
  const char *p = st->data + e->begin;
  if ((uintptr_t)p % xy_dtype_size(e->dtype) == 0)
    return XY_OK;
  size_t n = e->end - e->begin;
  e->copy = malloc(n ? n : 1);
  if (!e->copy)
    return xy_fail(err, XY_E_NOMEM, "%s: out of memory copying tensor '%s'", st->path, e->name);
  memcpy(e->copy, p, n);
  return XY_OK;
}

/* Reads the header length and the JSON header. */
static int parse_header(xy_safetensors *st, json_t **out, xy_error *err)
{
  if (st->len < 8)
    return xy_fail(err, XY_E_PARSE, "%s: file of %zu bytes is too short for a safetensors "
                   "header", st->path, st->len);
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--)
    n = n << 8 | (unsigned char)st->buf[i];
  if (n > st->len - 8)
    return xy_fail(err, XY_E_PARSE,
                   "%s: header length %" PRIu64 " is beyond the end of the file (%zu bytes)",
                   st->path, n, st->len);
  st->data = st->buf + 8 + n;
  st->data_len = st->len - 8 - (size_t)n;
  json_error_t jerr;
  json_t *root = json_loadb(st->buf + 8, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
  if (!root)
    return xy_fail(err, XY_E_PARSE, "%s: bad JSON header: line %d column %d: %s", st->path,
                   jerr.line, jerr.column, jerr.text);
  if (!json_is_object(root)) {
    json_decref(root);
    return xy_fail(err, XY_E_PARSE, "%s: JSON header is not an object", st->path);
  }
  const json_t *meta = json_object_get(root, "__metadata__");
  if (meta && !json_is_object(meta)) {
    json_decref(root);
    return xy_fail(err, XY_E_PARSE, "%s: '__metadata__' is not an object", st->path);
  }
  *out = root;
  return XY_OK;
}

/* Entries in header order: jansson iterates objects in insertion order (2.14 does; the
 * tests check the order of the plstm weights against their manifest). */
static int parse_entries(xy_safetensors *st, json_t *root, xy_error *err)
{
  size_t n = json_object_size(root) - (json_object_get(root, "__metadata__") ? 1 : 0);
  st->entries = calloc(n ? n : 1, sizeof *st->entries);
  if (!st->entries)
    return xy_fail(err, XY_E_NOMEM, "%s: out of memory", st->path);
  const char *name;
  json_t *v;
  json_object_foreach(root, name, v) {
    if (strcmp(name, "__metadata__") == 0)
      continue;
    st_entry *e = &st->entries[st->n++];
    int rc = parse_entry(name, v, e, st->data_len, st->path, err);
    if (!rc)
      rc = align_entry(st, e, err);
    if (rc)
      return rc;
  }
  return XY_OK;
}

int xy_safetensors_open(const char *path, int64_t max_bytes, xy_safetensors **out,
                        xy_error *err)
{
  *out = NULL;
  xy_safetensors *st = calloc(1, sizeof *st);
  if (!st || !(st->path = xy_strdup(path))) {
    free(st);
    return xy_fail(err, XY_E_NOMEM, "%s: out of memory", path);
  }
  int rc = xy_read_file(path, max_bytes, &st->buf, &st->len, err);
  json_t *root = NULL;
  if (!rc)
    rc = parse_header(st, &root, err);
  if (!rc)
    rc = parse_entries(st, root, err);
  json_decref(root);
  if (rc) {
    xy_safetensors_close(st);
    return rc;
  }
  *out = st;
  return XY_OK;
}

size_t xy_safetensors_count(const xy_safetensors *st)
{
  return st->n;
}

const char *xy_safetensors_name(const xy_safetensors *st, size_t i)
{
  return i < st->n ? st->entries[i].name : NULL;
}

int xy_safetensors_get(const xy_safetensors *st, const char *name, xy_array *view,
                       xy_error *err)
{
  memset(view, 0, sizeof *view);
  const st_entry *e = NULL;
  for (size_t i = 0; i < st->n && !e; i++)
    if (strcmp(st->entries[i].name, name) == 0)
      e = &st->entries[i];
  if (!e)
    return xy_fail(err, XY_E_SPEC, "%s: no tensor named '%s'", st->path, name);
  if (!e->supported)
    return xy_fail(err, XY_E_PARSE,
                   "%s: tensor '%s' has dtype %s; xylem reads F32, F64, F16, BF16, I32 and I64",
                   st->path, name, e->dtype_name);
  view->dtype = e->dtype;
  view->rank = e->rank;
  memcpy(view->shape, e->shape, sizeof view->shape);
  view->count = e->count;
  /* The array type has no const data; views are documented as read-only. */
  view->data = e->copy ? e->copy : (void *)(uintptr_t)(st->data + e->begin);
  return XY_OK;
}

/* ------------------------------------------------------------------ writing */

int xy_safetensors_write(const char *path, const char *const *names, const xy_array *arrays,
                         size_t n, xy_error *err)
{
  json_t *hdr = json_object();
  size_t offset = 0;
  int rc = hdr ? XY_OK : xy_fail(err, XY_E_NOMEM, "out of memory");
  for (size_t i = 0; !rc && i < n; i++) {
    const xy_array *a = &arrays[i];
    static const char *const dtype_names[] = {[XY_F32] = "F32", [XY_F64] = "F64",
                                              [XY_I32] = "I32", [XY_I64] = "I64",
                                              [XY_F16] = "F16", [XY_BF16] = "BF16"};
    if (xy_dtype_size(a->dtype) == 0) {
      rc = xy_fail(err, XY_E_USAGE, "%s: tensor '%s' has a bad dtype %d", path, names[i],
                   (int)a->dtype);
      break;
    }
    json_t *e = json_object(), *shape = json_array(), *offs = json_array();
    for (int d = 0; d < a->rank && shape; d++)
      json_array_append_new(shape, json_integer((json_int_t)a->shape[d]));
    size_t bytes = a->count * xy_dtype_size(a->dtype);
    json_array_append_new(offs, json_integer((json_int_t)offset));
    json_array_append_new(offs, json_integer((json_int_t)(offset + bytes)));
    offset += bytes;
    if (!rc && (!e || !shape || !offs ||
                json_object_set_new(e, "dtype", json_string(dtype_names[a->dtype])) ||
                json_object_set_new(e, "shape", shape) ||
                json_object_set_new(e, "data_offsets", offs) ||
                json_object_set_new(hdr, names[i], e)))
      rc = xy_fail(err, XY_E_NOMEM, "out of memory");
    else if (rc) {
      json_decref(e);
      json_decref(shape);
      json_decref(offs);
    }
  }
  char *text = rc ? NULL : json_dumps(hdr, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(hdr);
  if (!rc && !text)
    rc = xy_fail(err, XY_E_NOMEM, "out of memory");
  if (rc) {
    free(text);
    return rc;
  }
  /* The header is padded with spaces so that the data starts 8-byte aligned. */
  size_t hlen = strlen(text), padded = (hlen + 7) / 8 * 8;
  size_t total = 8 + padded + offset;
  char *buf = malloc(total ? total : 1);
  if (!buf) {
    free(text);
    return xy_fail(err, XY_E_NOMEM, "out of memory writing %s", path);
  }
  for (int b = 0; b < 8; b++)
    buf[b] = (char)((uint64_t)padded >> (8 * b));
  memcpy(buf + 8, text, hlen);
  memset(buf + 8 + hlen, ' ', padded - hlen);
  free(text);
  char *data = buf + 8 + padded;
  for (size_t i = 0; i < n; i++) {
    size_t bytes = arrays[i].count * xy_dtype_size(arrays[i].dtype);
    memcpy(data, arrays[i].data, bytes);
    data += bytes;
  }
  rc = xy_write_file_atomic(path, buf, total, err);
  free(buf);
  return rc;
}
