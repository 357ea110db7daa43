/* pipeline.h: runs the passes in order, verifying after each (pipeline.c lists them). */
#ifndef XY_PIPELINE_H
#define XY_PIPELINE_H

#include "passes.h"

int pipeline_run(pass_state *ps, xy_error *err);

#endif /* XY_PIPELINE_H */
