// node-sparkpost 2.x's suppressionList against a live Engage server (tests/compat/test_suppression_clients.py).
// Usage: node suppression_list.js <origin> <api key>; prints one JSON object of what each call gave.
'use strict';

const SparkPost = require('sparkpost');

async function outcome(promise) {
  try {
    return { ok: await promise };
  } catch (err) {
    return { status: err.statusCode, errors: err.errors };
  }
}

async function main() {
  const [origin, key] = process.argv.slice(2);
  const client = new SparkPost(key, { origin });
  const list = client.suppressionList;
  const seen = {};
  seen.upsertOne = await outcome(list.upsert({
    recipient: 'Test1@Test.com', transactional: false, non_transactional: true, description: 'Test description 1'
  }));
  seen.upsertMany = await outcome(list.upsert([
    { recipient: 'test2@test.com', transactional: true, non_transactional: true, description: 'Test description 2' },
    { recipient: 'test3@test.com', type: 'transactional' },
  ]));
  seen.get = await outcome(list.get('test1@test.com'));
  seen.list = await outcome(list.list({ from: '2015-05-07T00:00:00+0000', limit: 5 }));
  seen.listTypes = await outcome(list.list({ types: ['transactional'] }));
  seen.delete = await outcome(list.delete('test1@test.com'));
  seen.getDeleted = await outcome(list.get('test1@test.com'));
  seen.bad = await outcome(list.upsert({ recipient: 'not-an-address', type: 'transactional' }));
  process.stdout.write(JSON.stringify(seen));
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack || err));
  process.exit(1);
});
