import {
  compose,
  HttpRequest,
  type HttpRequestInit,
  HttpResponse,
  type Middleware,
  type Next,
  type SluiceEvent,
} from '../../src/index.js';
import { bytesSource, instrument } from '../../src/internals.js';

/** A response to `request` with a body held in memory; `dumped` counts how often its body was dropped. */
export function respond(
  request: HttpRequest,
  status = 200,
  body = '',
  headers: Record<string, string> = {},
): HttpResponse & { dumped: () => number } {
  let dumped = 0;
  const source = bytesSource(body);
  const response = new HttpResponse({
    status,
    headers,
    url: request.url,
    body: {
      text: () => source.text(),
      arrayBuffer: () => source.arrayBuffer(),
      get body() {
        return source.body;
      },
      dump: async () => {
        dumped++;
      },
    },
    request,
  });
  return Object.assign(response, { dumped: () => dumped });
}

export type Step = number | Error | { status: number; headers?: Record<string, string>; body?: string };

/**
 * A terminal `Next` that answers attempt n with `steps[n]` (the last step repeats): a status, a response
 * description, or an error to throw. It records every request and response it saw.
 */
export function scripted(...steps: Step[]) {
  const requests: HttpRequest[] = [];
  const responses: ReturnType<typeof respond>[] = [];
  const send: Next = async (request) => {
    const step = steps[Math.min(requests.length, steps.length - 1)] ?? 200;
    requests.push(request);
    if (step instanceof Error) throw step;
    const { status, headers = {}, body = '' } = typeof step === 'number' ? { status: step } : step;
    const response = respond(request, status, body, headers);
    responses.push(response);
    return response;
  };
  return { send, requests, responses };
}

/** Runs `middleware` over `terminal` (counted as wire attempts), collecting the events of each call. */
export function harness(middleware: Middleware[], terminal: Next) {
  const events: SluiceEvent[] = [];
  const run = compose(middleware, instrument(terminal));
  const call = (init: Partial<HttpRequestInit> = {}) =>
    run(new HttpRequest({ url: 'https://api.test/x', events: (event) => events.push(event), ...init }));
  return { call, events };
}
