// The agents' WebSocket endpoint (/agent/v1/ws). Agents dial out to the controller (NAT-friendly)
// and authenticate with their device token; each message is validated before the agents service
// sees it. A bad token is refused on the upgrade with 401 (and counts as an auth failure); a
// malformed message closes the connection with 1008 and changes nothing.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { WebSocketServer, type WebSocket } from 'ws';
import { AGENT_WS_PATH, type ControllerMessage } from '../../agent/protocol.js';
import { DroverError } from '../../domain/errors.js';
import type { AgentSession } from '../../services/agents.service.js';
import type { ApiDeps } from '../app.js';
import { parseAgentMessage } from '../agent-messages.js';

const MAX_MESSAGE = 1024 * 1024;
const PING_MS = 30_000;

export function registerAgentSocket(app: FastifyInstance, deps: ApiDeps): void {
  const agents = deps.services.agents;
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE, perMessageDeflate: false });
  const log = app.log;

  const refuse = (socket: Duplex, status: number, err: DroverError) => {
    const body = JSON.stringify({ statusCode: status, code: err.code, error: 'Unauthorized', message: err.message, fix: err.fix });
    socket.end(`HTTP/1.1 ${status} ${status === 429 ? 'Too Many Requests' : status === 403 ? 'Forbidden' : 'Unauthorized'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  };

  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if ((req.url ?? '').split('?')[0] !== AGENT_WS_PATH) {
      socket.destroy();
      return;
    }
    const ip = req.socket.remoteAddress ?? 'unknown';
    void (async () => {
      if (deps.limiter.retryAfter(ip) > 0) return refuse(socket, 429, new DroverError('DROVER_AUTH_RATE_LIMITED'));
      const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
      if (!m) return refuse(socket, 401, new DroverError('DROVER_AUTH_MISSING'));
      let principal;
      try {
        principal = await deps.services.auth.authenticate(m[1]!);
      } catch (err) {
        deps.limiter.recordFailure(ip);
        log.info({ ip }, 'agent auth failure: invalid token');
        return refuse(socket, 401, err instanceof DroverError ? err : new DroverError('DROVER_AUTH_INVALID'));
      }
      if (principal.role !== 'device' || !principal.deviceId) {
        return refuse(socket, 403, new DroverError('DROVER_AUTH_FORBIDDEN', 'Only a device token can connect as an agent.'));
      }
      const deviceId = principal.deviceId;
      wss.handleUpgrade(req, socket, head, (ws) => serve(ws, deviceId, ip));
    })().catch((err) => {
      log.error({ err }, 'agent upgrade failed');
      socket.destroy();
    });
  });

  function serve(ws: WebSocket, deviceId: string, ip: string): void {
    const session: AgentSession = {
      deviceId,
      remote: ip,
      send(msg: ControllerMessage) {
        if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
      },
      close(code, reason) {
        ws.close(code, reason);
      },
    };
    agents.attach(session);
    let alive = true;
    ws.on('pong', () => {
      alive = true;
    });
    // A peer that vanished without a FIN (power cut) is found by two unanswered pings.
    const ping = setInterval(() => {
      if (!alive) return ws.terminate();
      alive = false;
      ws.ping();
    }, PING_MS);
    // Messages of one agent are handled in order (a batch's ack must not overtake its hello).
    let chain = Promise.resolve();
    ws.on('message', (data, isBinary) => {
      const msg = isBinary ? null : parseAgentMessage(data.toString());
      if (!msg) {
        session.send({ t: 'error', code: 'DROVER_AGENT_PROTOCOL', message: 'Malformed agent message.' });
        ws.close(1008, 'malformed message');
        return;
      }
      chain = chain.then(() => agents.receive(session, msg)).catch((err) => log.error({ err, device: deviceId }, 'agent message failed'));
    });
    ws.on('close', () => {
      clearInterval(ping);
      void chain.then(() => agents.detach(session)).catch((err) => log.error({ err }, 'agent detach failed'));
    });
    ws.on('error', (err) => log.info({ err: err.message, device: deviceId }, 'agent socket error'));
  }

  app.addHook('preClose', async () => {
    for (const ws of wss.clients) ws.terminate();
    wss.close();
  });
}
