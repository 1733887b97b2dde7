/* Before and after hooks of REST routes: see api/hooks.c. */
#ifndef KZ_API_HOOKS_H
#define KZ_API_HOOKS_H

#include "api/api.h"

/* Runs the call's route handler, wrapped in the Lua before/after hooks
 * registered for its API method, if any (worker thread). */
void kz_api_run_with_hooks(kz_call_t *call);

#endif
