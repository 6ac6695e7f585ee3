// The blueprint's HTTP scenario for k6: each virtual user logs in and loops over own profile,
// task list and detail, nearest officers, statistics, and every other iteration creates a task
// and starts and completes it. Thresholds fail the run (k6 exits non-zero).
//   GAD_LOAD_EMAIL=… GAD_LOAD_PASSWORD=… PROFILE=full k6 run loadtest/k6/http.js
// The account must be a supervisor or admin; the server's rate limits must be raised for a load
// test (GAD_RATE_LIMIT_GENERAL, GAD_RATE_LIMIT_LOGIN), or 429s count as errors.
import http from 'k6/http';
import { check, fail, sleep } from 'k6';
import { BASE, EMAIL, PASSWORD, STAGES, JSON_HEADERS, auth, randomPoint, taskBody } from './common.js';

export const options = {
  stages: STAGES,
  thresholds: {
    http_req_duration: ['p(95)<500', 'p(99)<1000'],
    http_req_failed: ['rate<0.05'],
    checks: ['rate>0.95'],
  },
  summaryTrendStats: ['count', 'avg', 'p(50)', 'p(95)', 'p(99)', 'max'],
};

function login() {
  const response = http.post(`${BASE}/api/v1/auth/login`, JSON.stringify({ email: EMAIL, password: PASSWORD }),
    { headers: JSON_HEADERS, tags: { name: 'login' } });
  check(response, { 'login 200': (r) => r.status === 200 });
  return response.status === 200 ? response.json('access_token') : null;
}

// Seeds tasks for the detail requests, once.
export function setup() {
  if (!EMAIL || !PASSWORD) fail('set GAD_LOAD_EMAIL and GAD_LOAD_PASSWORD');
  const token = login();
  if (!token) fail(`cannot log in at ${BASE}`);
  const ids = [];
  for (let i = 0; i < 30; i++) {
    const response = http.post(`${BASE}/api/v1/tasks`, taskBody(`seed ${i}`), auth(token));
    if (response.status === 201) ids.push(response.json('id'));
  }
  return { ids };
}

let token = null;
let iteration = 0;

export default function (data) {
  if (!token || iteration % 20 === 0) token = login();
  iteration++;
  if (!token) {
    sleep(1);
    return;
  }
  const params = (name) => Object.assign(auth(token), { tags: { name } });
  check(http.get(`${BASE}/api/v1/auth/me`, params('own_profile')), { 'profile 200': (r) => r.status === 200 });
  check(http.get(`${BASE}/api/v1/tasks?limit=20`, params('task_list')), { 'list 200': (r) => r.status === 200 });
  if (data.ids.length > 0) {
    const id = data.ids[Math.floor(Math.random() * data.ids.length)];
    check(http.get(`${BASE}/api/v1/tasks/${id}`, params('task_detail')), { 'detail 200': (r) => r.status === 200 });
  }
  const point = randomPoint();
  check(http.get(`${BASE}/api/v1/officers/nearest?lat=${point.lat.toFixed(5)}&lng=${point.lng.toFixed(5)}&limit=5`,
    params('nearest_officers')), { 'nearest 200': (r) => r.status === 200 });
  check(http.get(`${BASE}/api/v1/stats/overview`, params('statistics')), { 'stats 200': (r) => r.status === 200 });
  if (iteration % 2 === 0) {
    const created = http.post(`${BASE}/api/v1/tasks`, taskBody(`vu ${__VU}-${iteration}`), params('task_create'));
    if (check(created, { 'create 201': (r) => r.status === 201 })) {
      const url = `${BASE}/api/v1/tasks/${created.json('id')}/transitions`;
      for (const action of ['start', 'complete']) {
        check(http.post(url, JSON.stringify({ action }), params('task_transition')), { 'transition 200': (r) => r.status === 200 });
      }
    }
  }
  sleep(0.5 + Math.random());
}
