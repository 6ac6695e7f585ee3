// The blueprint's WebSocket scenario for k6: each virtual user connects (bearer token on the
// upgrade), subscribes to `tasks`, creates a task through the API and waits for its own
// `task.created`; message latency is the event's `ts` (its commit) to receipt. Thresholds fail
// the run; an event not received within 5 s counts in ws_events_lost, which must stay 0.
//   GAD_LOAD_EMAIL=… GAD_LOAD_PASSWORD=… PROFILE=full k6 run loadtest/k6/ws.js
// The account must be an operator or higher; raise the server's per-user socket cap
// (GAD__WS__MAX_CONNECTIONS_PER_USER) to the peak number of virtual users.
import http from 'k6/http';
import ws from 'k6/ws';
import { check, fail, sleep } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import { BASE, EMAIL, PASSWORD, STAGES, JSON_HEADERS, auth, taskBody } from './common.js';

const connectTime = new Trend('ws_connect_ms', true);
const messageLatency = new Trend('ws_message_ms', true);
const lost = new Counter('ws_events_lost');
const duplicated = new Counter('ws_events_duplicated');

export const options = {
  stages: STAGES,
  thresholds: {
    ws_connect_ms: ['p(95)<1500'],
    ws_message_ms: ['p(95)<300'],
    ws_events_lost: ['count<1'],
    ws_events_duplicated: ['count<1'],
    http_req_failed: ['rate<0.05'],
  },
};

export function setup() {
  if (!EMAIL || !PASSWORD) fail('set GAD_LOAD_EMAIL and GAD_LOAD_PASSWORD');
  const response = http.post(`${BASE}/api/v1/auth/login`, JSON.stringify({ email: EMAIL, password: PASSWORD }), { headers: JSON_HEADERS });
  if (response.status !== 200) fail(`cannot log in at ${BASE}: ${response.status}`);
  return { token: response.json('access_token') };
}

export default function (data) {
  const started = Date.now();
  const url = `${BASE.replace(/^http/, 'ws')}/ws/connect`;
  let taskId = null;
  let received = 0;
  const response = ws.connect(url, { headers: { Authorization: `Bearer ${data.token}` } }, (socket) => {
    socket.on('message', (text) => {
      const frame = JSON.parse(text);
      if (frame.type === 'connection_ack') {
        socket.send(JSON.stringify({ type: 'subscribe', topics: ['tasks'] }));
      } else if (frame.type === 'subscribed') {
        connectTime.add(Date.now() - started);
        const created = http.post(`${BASE}/api/v1/tasks`, taskBody(`ws ${__VU}-${__ITER}`), auth(data.token));
        if (check(created, { 'create 201': (r) => r.status === 201 })) taskId = created.json('id');
        else socket.close();
      } else if (frame.type === 'task.created' && frame.data && frame.data.id === taskId) {
        received++;
        messageLatency.add(Date.now() - Date.parse(frame.ts));
        if (received === 1) socket.setTimeout(() => socket.close(), 200);
      }
    });
    socket.setTimeout(() => socket.close(), 5000);
  });
  check(response, { 'upgrade 101': (r) => r && r.status === 101 });
  if (taskId !== null && received === 0) lost.add(1);
  if (received > 1) duplicated.add(received - 1);
  sleep(0.5 + Math.random());
}
