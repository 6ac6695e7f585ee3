// Shared by http.js and ws.js: the blueprint's stages and thresholds, the target and the account.
// Run with k6 (https://k6.io): see docs/LOAD_TESTING_GUIDE.md.

export const BASE = (__ENV.GAD_LOAD_BASE || 'http://127.0.0.1:8080').replace(/\/$/, '');
export const EMAIL = __ENV.GAD_LOAD_EMAIL;
export const PASSWORD = __ENV.GAD_LOAD_PASSWORD;

// PROFILE=smoke (under a minute) or full (the blueprint's: warm-up, ramp, sustain, spike, ramp down).
export const STAGES = {
  smoke: [
    { duration: '5s', target: 5 },
    { duration: '20s', target: 10 },
    { duration: '5s', target: 0 },
  ],
  full: [
    { duration: '30s', target: 20 },
    { duration: '30s', target: 50 },
    { duration: '2m', target: 50 },
    { duration: '30s', target: 100 },
    { duration: '30s', target: 100 },
    { duration: '30s', target: 0 },
  ],
}[__ENV.PROFILE || 'smoke'];

export const JSON_HEADERS = { 'Content-Type': 'application/json' };

export function auth(token) {
  return { headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' } };
}

// Madrid, as the Rust runner: a point within about 5 km.
export function randomPoint() {
  return { lat: 40.4168 + (Math.random() - 0.5) * 0.09, lng: -3.7038 + (Math.random() - 0.5) * 0.12 };
}

export function taskBody(label) {
  const kinds = ['patrol', 'investigation', 'surveillance', 'intervention', 'administrative'];
  const start = new Date(Date.now() + (5 + Math.random() * 600) * 60000).toISOString();
  return JSON.stringify({
    title: `Load ${label}`,
    kind: kinds[Math.floor(Math.random() * kinds.length)],
    scheduled_start: start,
    location: randomPoint(),
  });
}
