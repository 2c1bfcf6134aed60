// Turns anything thrown in a request into the catalogue's JSON error body.
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { STATUS_CODES } from 'node:http';
import { DroverError, ERRORS, type ErrorBody, type ErrorCode } from '../domain/errors.js';

// Fastify's own codes for malformed requests, mapped onto ours.
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'DROVER_BAD_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'DROVER_BAD_JSON',
  FST_ERR_CTP_BODY_TOO_LARGE: 'DROVER_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'DROVER_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'DROVER_BAD_JSON',
};

export function toDroverError(err: unknown): DroverError {
  if (err instanceof DroverError) return err;
  const e = err as FastifyError;
  if (e?.validation) {
    const where = e.validationContext ?? 'request';
    const first = e.validation[0] as { instancePath?: string; message?: string; params?: Record<string, unknown> } | undefined;
    const field = `${where}${(first?.instancePath ?? '').replace(/\//g, '.')}`;
    const extra = first?.params?.additionalProperty ? ` "${String(first.params.additionalProperty)}"` : '';
    return new DroverError('DROVER_VALIDATION', `Invalid ${field}: ${first?.message ?? e.message}${extra}.`, { field });
  }
  const mapped = e?.code ? FASTIFY_CODES[e.code] : undefined;
  if (mapped) return new DroverError(mapped, `${ERRORS[mapped].message} (${e.message})`);
  if (e instanceof SyntaxError && /JSON/.test(e.message)) return new DroverError('DROVER_BAD_JSON');
  if (typeof e?.statusCode === 'number' && e.statusCode === 413) return new DroverError('DROVER_BODY_TOO_LARGE');
  return new DroverError('DROVER_INTERNAL');
}

export function errorBody(err: DroverError): ErrorBody {
  return {
    statusCode: err.status,
    code: err.code,
    error: STATUS_CODES[err.status] ?? 'Error',
    message: err.message,
    fix: err.fix,
    ...(err.details ? { details: err.details } : {}),
  };
}

export function errorHandler(err: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const de = toDroverError(err);
  if (de.code === 'DROVER_INTERNAL') request.log.error({ err }, 'request failed');
  else if (de.status >= 500) request.log.warn({ code: de.code, msg: de.message }, 'request failed');
  if (de.code === 'DROVER_AUTH_RATE_LIMITED' && de.details?.retryAfter) reply.header('retry-after', String(de.details.retryAfter));
  void reply.status(de.status).type('application/json; charset=utf-8').send(errorBody(de));
}
