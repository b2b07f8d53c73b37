/**
 * The bench's servers, in a process of their own so that they do not share a core's time with the
 * clients being measured. Talks to its parent over IPC: sends its URLs, answers `counts`, obeys `revoke`.
 */
import { startApiServer, startAuthServer } from '../testing/index.js';

const options = JSON.parse(process.argv[2] ?? '{}') as { lifetime?: number; refreshTokens?: boolean; delay?: number };
const auth = await startAuthServer(options);
const api = await startApiServer({ auth });
process.on('message', (message: { id: number; command: 'counts' | 'revoke' | 'close' }) => {
  if (message.command === 'revoke') auth.revokeAll();
  if (message.command === 'close') {
    void Promise.all([api.close(), auth.close()]).then(() => process.exit(0));
    return;
  }
  process.send?.({ id: message.id, counts: { auth: { ...auth.counts }, api: { ...api.counts } } });
});
process.send?.({ ready: true, api: api.url, auth: auth.url, tokenURL: auth.tokenURL });
