/* cmd_devices.c: xylem devices. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cmd_devices(int argc, char **argv)
{
  if (argc > 2) {
    if (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0) {
      puts("usage: xylem devices\n\nLists the OpenCL devices; --device and XYLEM_DEVICE take the\n"
           "index, P:D (platform:device) or a part of the name. The default is the first CPU.");
      return EXIT_OK;
    }
    fprintf(stderr, "xylem devices: unexpected argument '%s'\n", argv[2]);
    return EXIT_USAGE;
  }
  xrt_device_info *list = NULL;
  size_t n = 0;
  xrt_error *err = malloc(sizeof *err);
  if (!err)
    return EXIT_FAIL;
  if (xrt_devices(&list, &n, err)) {
    int rc = cli_report_rt(err);
    free(err);
    return rc;
  }
  free(err);
  if (n == 0)
    puts("no OpenCL devices (is an ICD such as pocl-opencl-icd installed?)");
  for (size_t i = 0; i < n; i++) {
    const xrt_device_info *d = &list[i];
    printf("%d  %d:%d  %s / %s  [%s]\n", d->index, d->platform_index, d->device_index,
           d->platform, d->name, d->is_gpu ? "GPU" : d->is_cpu ? "CPU" : "other");
    printf("     %s, driver %s, %u compute units, work-group <= %zu, local %llu KiB, "
           "global %llu MiB\n", d->version, d->driver, d->compute_units, d->max_work_group_size,
           (unsigned long long)(d->local_mem_bytes >> 10),
           (unsigned long long)(d->global_mem_bytes >> 20));
  }
  xrt_devices_free(list);
  return EXIT_OK;
}
