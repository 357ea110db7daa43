/*
 * stages.c: a spec's "stages", named sets of overrides kept in the spec itself and applied
 * with --stage NAME before any --set. TNT's Stage 2 (spec tnt.md §4.7) is the model they
 * were made for: the same model fine-tuned with smaller local chunks.
 *
 *   "stages": {"stage2": {"layers[1].schedule.chunk": 2, "layers[2].schedule.chunk": 4}}
 *
 * Errors about an entry point at the entry in the spec; errors in a value a stage set
 * point at the stage's entry too (diag.c), with the path of the value it set.
 */
#include <stdlib.h>
#include <string.h>

#include "fe_internal.h"

/* Stage names are identifiers: typed on command lines, and "stages.NAME" stays a path. */
#define STAGE_NAME_MAX 128

static bool is_stage_name(const char *s)
{
  size_t n = strlen(s);
  if (n == 0 || n > STAGE_NAME_MAX || (s[0] >= '0' && s[0] <= '9'))
    return false;
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_';
    if (!ok)
      return false;
  }
  return true;
}

/* An override path: well-formed, within FE_PATH_MAX, and not into "stages" itself (a stage
 * may not rewrite the stages while they are applied). */
static const char *path_problem(const char *path)
{
  if (strlen(path) >= FE_PATH_MAX)
    return "the path is too long";
  const char *p = path;
  fe_comp c;
  int r, n = 0;
  while ((r = fe_path_next(path, &p, &c)) > 0) {
    if (n == 0 && !c.is_index && c.key_len == 6 && memcmp(c.key, "stages", 6) == 0)
      return "a stage may not change the stages";
    n++;
  }
  if (r < 0 || n == 0)
    return "bad path; use keys and [index], e.g. layers[0].schedule.chunk";
  return NULL;
}

/* Reports cause at member key of the object at obj_path (its key when at_key, else its
 * value), the message naming shown; at the object when the member is not in the text
 * (an override put it there). */
static int member_fail(const fe_src *src, xy_error *err, int code, const char *obj_path,
                       const char *key, bool at_key, const char *shown, const char *cause)
{
  size_t obj, off;
  if (fe_json_find(src->text, obj_path, false, &obj) &&
      fe_json_find_member(src->text, obj, key, at_key, &off))
    return fe_fail_at_offset(err, code, src, off, shown, "%s", cause);
  return fe_fail_at(err, code, src, obj_path, "%s", cause);
}

static int check_stage(const fe_src *src, const char *name, const json_t *stage, xy_error *err)
{
  char sp[FE_PATH_MAX];
  fe_path_key(sp, "stages", name);
  if (!json_is_object(stage)) {
    char cause[256];
    snprintf(cause, sizeof cause,
             "a stage is an object of override paths -> values ({\"layers[0].schedule.chunk\": "
             "2}), not %s", fe_json_kind(stage));
    return fe_fail_at(err, XY_E_SPEC, src, sp, "%s", cause);
  }
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)stage, key, v) {
    const char *why = path_problem(key);
    if (why) {
      char cause[FE_PATH_MAX + 160];
      snprintf(cause, sizeof cause, "entry '%.200s': %s", key, why);
      return member_fail(src, err, XY_E_SPEC, sp, key, true, sp, cause);
    }
  }
  return XY_OK;
}

int fe_check_stages(const fe_src *src, const json_t *root, xy_error *err)
{
  const json_t *stages = json_object_get(root, "stages");
  if (!stages)
    return XY_OK;
  if (!json_is_object(stages))
    return fe_fail_at(err, XY_E_SPEC, src, "stages",
                      "must be an object of stages {\"NAME\": {\"PATH\": VALUE, ...}}, not %s",
                      fe_json_kind(stages));
  const char *name;
  json_t *stage;
  json_object_foreach((json_t *)stages, name, stage) {
    if (!is_stage_name(name)) {
      char cause[256];
      snprintf(cause, sizeof cause,
               "'%.64s' is not a valid stage name: use letters, digits and '_', not starting "
               "with a digit, at most %d characters", name, STAGE_NAME_MAX);
      return member_fail(src, err, XY_E_SPEC, "stages", name, true, "stages", cause);
    }
    int rc = check_stage(src, name, stage, err);
    if (rc)
      return rc;
  }
  return XY_OK;
}

/* "unknown stage 'x'; expected one of: a, b" */
static int unknown_stage(const fe_src *src, const json_t *stages, const char *name,
                         xy_error *err)
{
  if (!stages || json_object_size(stages) == 0)
    return xy_fail(err, XY_E_USAGE, "%s: unknown stage '%.64s': the spec defines no stages",
                   src->file, name);
  xy_buf list;
  xy_buf_init(&list);
  const char *key;
  json_t *v;
  size_t i = 0;
  json_object_foreach((json_t *)stages, key, v)
    xy_buf_printf(&list, "%s%s", i++ ? ", " : "", key);
  char *l = xy_buf_take(&list);
  int rc = fe_fail_at(err, XY_E_USAGE, src, "stages",
                      "unknown stage '%.64s'; expected one of: %s", name, l ? l : "?");
  free(l);
  return rc;
}

/* Sets one entry of stage name (at path sp) in root and records it in ch. */
static int apply_entry(json_t *root, const fe_src *src, const char *sp, size_t stage_off,
                       const char *key, const json_t *value, fe_changes *ch, xy_error *err)
{
  /* A copy: the stage keeps its own value, whatever later overrides do to the target. */
  json_t *copy = json_deep_copy(value);
  if (!copy)
    return xy_fail(err, XY_E_NOMEM, "%s: out of memory applying stage '%s'", src->file,
                   ch->stage);
  char why[FE_PATH_MAX + 128], *canon;
  int rc = fe_set_path(root, key, copy, &canon, why, sizeof why);
  if (rc == XY_E_NOMEM)
    return xy_fail(err, rc, "%s: out of memory applying stage '%s'", src->file, ch->stage);
  if (rc) {
    char cause[2 * FE_PATH_MAX + 160];
    snprintf(cause, sizeof cause, "entry '%.200s': %s", key, why);
    return member_fail(src, err, XY_E_SPEC, sp, key, true, sp, cause);
  }
  size_t at = FE_NOT_IN_TEXT;
  if (stage_off != FE_NOT_IN_TEXT && !fe_json_find_member(src->text, stage_off, key, false, &at))
    at = FE_NOT_IN_TEXT;
  if (!fe_changes_add(ch, key, canon, at))
    return xy_fail(err, XY_E_NOMEM, "%s: out of memory applying stage '%s'", src->file,
                   ch->stage);
  return XY_OK;
}

int fe_apply_stage(json_t *root, const fe_src *src, const char *name, fe_changes *ch,
                   xy_error *err)
{
  int rc = fe_check_stages(src, root, err);
  if (rc)
    return rc;
  const json_t *stages = json_object_get(root, "stages");
  const json_t *stage = stages ? json_object_get(stages, name) : NULL;
  if (!stage)
    return unknown_stage(src, stages, name, err);
  ch->stage = name;
  char sp[FE_PATH_MAX];
  fe_path_key(sp, "stages", name);
  size_t stage_off;
  if (!fe_json_find(src->text, sp, false, &stage_off))
    stage_off = FE_NOT_IN_TEXT;
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)stage, key, v) {
    if ((rc = apply_entry(root, src, sp, stage_off, key, v, ch, err)))
      return rc;
  }
  return XY_OK;
}
