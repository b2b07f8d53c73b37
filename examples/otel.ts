/** OpenTelemetry: spans for the call, its attempts and the token request, printed by the console exporter. `npx tsx examples/otel.ts` */
import { trace } from '@opentelemetry/api';
import { BasicTracerProvider, ConsoleSpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { clientCredentials, createClient } from 'sluice';
import { startApiServer, startAuthServer } from 'sluice/testing';

// Your app registers the SDK once (NodeSDK in production); Sluice finds it through @opentelemetry/api.
trace.setGlobalTracerProvider(
  new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(new ConsoleSpanExporter())] }),
);
const auth = await startAuthServer();
const api = await startApiServer({ auth });
{
  await using client = createClient({
    baseURL: api.url,
    auth: { grant: clientCredentials({ tokenURL: auth.tokenURL, clientId: 'app', clientSecret: 'app-secret' }) },
  });
  await client.get('items/1');
}
await Promise.all([auth.close(), api.close()]);
