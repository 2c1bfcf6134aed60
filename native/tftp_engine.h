#ifndef DROVER_TFTP_ENGINE_H
#define DROVER_TFTP_ENGINE_H
#include <node_api.h>
/* Adds tftpEngineCreate/Start/AbortAll/Close to the addon's exports. */
void tftp_engine_init(napi_env env, napi_value exports);
#endif
