/*
 * overrides.c: "PATH=VALUE" changes to a spec's JSON (xylem check --set graph.length=1000),
 * applied before the spec is read, so an override is checked like any value in the file.
 * A stage's entries (stages.c) are set the same way.
 */
#include <stdlib.h>
#include <string.h>

#include "fe_internal.h"

/* Checks the syntax of path and writes its canonical form ("a.b[2]") into canon. */
static bool canonical_path(const char *path, xy_buf *canon)
{
  const char *p = path;
  fe_comp c;
  int r, n = 0;
  while ((r = fe_path_next(path, &p, &c)) > 0) {
    if (c.is_index) {
      xy_buf_printf(canon, "[%lld]", (long long)c.index);
    } else {
      if (n)
        xy_buf_putc(canon, '.');
      xy_buf_put(canon, c.key, c.key_len);
    }
    n++;
  }
  return r == 0 && n > 0 && !canon->failed;
}

/* Walks to the parent of the last step of path and sets the value there. On failure
 * (XY_E_USAGE, XY_E_NOMEM) writes the cause into why. Takes value's reference either way. */
static int set_at(json_t *root, const char *path, json_t *value, char *why, size_t why_len)
{
  json_t *cur = root;
  const char *p = path;
  char done[FE_PATH_MAX] = "";
  fe_comp c;
  while (fe_path_next(path, &p, &c) > 0) {
    bool last = *p == '\0';
    char key[FE_PATH_MAX];
    snprintf(key, sizeof key, "%.*s", (int)(c.key_len < sizeof key ? c.key_len : sizeof key - 1),
             c.key ? c.key : "");
    const char *where = done[0] ? done : "the spec";
    if (c.is_index && !json_is_array(cur)) {
      snprintf(why, why_len, "%s is %s, not an array", where, fe_json_kind(cur));
      break;
    }
    if (!c.is_index && !json_is_object(cur)) {
      snprintf(why, why_len, "%s is %s, not an object", where, fe_json_kind(cur));
      break;
    }
    if (c.is_index && (size_t)c.index >= json_array_size(cur)) {
      snprintf(why, why_len, "%s has %zu elements; index %lld is out of range", where,
               json_array_size(cur), (long long)c.index);
      break;
    }
    if (last) {
      int rc = c.is_index ? json_array_set(cur, (size_t)c.index, value)
                          : json_object_set(cur, key, value);
      json_decref(value);
      if (rc)
        snprintf(why, why_len, "out of memory");
      return rc ? XY_E_NOMEM : XY_OK;
    }
    json_t *next = c.is_index ? json_array_get(cur, (size_t)c.index) : json_object_get(cur, key);
    if (!next) {
      snprintf(why, why_len, "%s has no key '%s'", where, key);
      break;
    }
    char step[FE_PATH_MAX];
    if (c.is_index)
      fe_path_index(step, done, c.index);
    else
      fe_path_key(step, done, key);
    memcpy(done, step, sizeof done);
    cur = next;
  }
  json_decref(value);
  return XY_E_USAGE;
}

int fe_set_path(json_t *root, const char *path, json_t *value, char **canon, char *why,
                size_t why_len)
{
  *canon = NULL;
  xy_buf b;
  xy_buf_init(&b);
  if (strlen(path) >= FE_PATH_MAX || !canonical_path(path, &b)) {
    bool nomem = b.failed;
    xy_buf_free(&b);
    json_decref(value);
    snprintf(why, why_len, "%s", nomem ? "out of memory"
                                       : "bad path; use keys and [index], e.g. layers[0].qk_scale");
    return nomem ? XY_E_NOMEM : XY_E_USAGE;
  }
  int rc = set_at(root, path, value, why, why_len);
  if (rc) {
    xy_buf_free(&b);
    return rc;
  }
  *canon = xy_buf_take(&b);
  if (!*canon) {
    snprintf(why, why_len, "out of memory");
    return XY_E_NOMEM;
  }
  return XY_OK;
}

bool fe_changes_add(fe_changes *ch, const char *text, char *canon, size_t at)
{
  char *t = xy_strdup(text);
  if (!t || !xy_grow((void **)&ch->v, &ch->cap, ch->n + 1, sizeof *ch->v)) {
    free(t);
    free(canon);
    return false;
  }
  ch->v[ch->n++] = (fe_change){.text = t, .path = canon, .at = at};
  return true;
}

void fe_changes_free(fe_changes *ch)
{
  for (size_t i = 0; i < ch->n; i++) {
    free(ch->v[i].text);
    free(ch->v[i].path);
  }
  free(ch->v);
  memset(ch, 0, sizeof *ch);
}

static bool valid_path(const char *path)
{
  xy_buf b;
  xy_buf_init(&b);
  bool ok = canonical_path(path, &b);
  xy_buf_free(&b);
  return ok;
}

/* Applies one override and records it in ch. */
static int apply_one(json_t *root, const char *file, const char *ov, fe_changes *ch,
                     xy_error *err)
{
  const char *eq = ov ? strchr(ov, '=') : NULL;
  if (!eq || eq == ov)
    return xy_fail(err, XY_E_USAGE, "%s: override '%s' must have the form PATH=VALUE", file,
                   ov ? ov : "(null)");
  size_t plen = (size_t)(eq - ov);
  if (plen >= FE_PATH_MAX)
    return xy_fail(err, XY_E_USAGE, "%s: override '%.64s...': the path is too long", file, ov);
  char path[FE_PATH_MAX];
  memcpy(path, ov, plen);
  path[plen] = '\0';
  if (!valid_path(path))
    return xy_fail(err, XY_E_USAGE,
                   "%s: override '%s': bad path; use keys and [index], e.g. layers[0].qk_scale",
                   file, ov);
  json_error_t je;
  json_t *value = json_loads(eq + 1, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
  if (!value)
    return xy_fail(err, XY_E_USAGE,
                   "%s: override '%s': the value is not JSON (%s); strings need quotes, "
                   "e.g. name=\"x\"", file, ov, je.text);
  char why[FE_PATH_MAX + 128];
  char *canon;
  int rc = fe_set_path(root, path, value, &canon, why, sizeof why);
  if (rc == XY_E_NOMEM)
    return xy_fail(err, rc, "out of memory");
  if (rc)
    return xy_fail(err, rc, "%s: override '%s': %s", file, ov, why);
  if (!fe_changes_add(ch, ov, canon, FE_NOT_IN_TEXT))
    return xy_fail(err, XY_E_NOMEM, "out of memory");
  return XY_OK;
}

int fe_apply_overrides(json_t *root, const char *file, const char *const *ov, size_t n,
                       fe_changes *ch, xy_error *err)
{
  for (size_t i = 0; i < n; i++) {
    int rc = apply_one(root, file, ov[i], ch, err);
    if (rc)
      return rc;
  }
  return XY_OK;
}
