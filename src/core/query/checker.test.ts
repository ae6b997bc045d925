import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FieldRef, QueryDocument, QueryExpr } from '../../ports/store/query.js';
import { QuerySyntaxError, parseCondition, parseQuery } from './index.js';

const lit = (value: string | number | boolean | null | undefined): QueryExpr => ({ kind: 'literal', value });
const column = (name: Extract<FieldRef, { kind: 'column' }>['column']): FieldRef => ({ kind: 'column', column: name });
const jobColumn = (name: Extract<FieldRef, { kind: 'jobColumn' }>['column']): FieldRef => ({ kind: 'jobColumn', column: name });
const doc = (document: QueryDocument, ...path: string[]): FieldRef => ({ kind: 'document', document, path });
const field = (f: FieldRef): QueryExpr => ({ kind: 'field', field: f });

/** What the left side of `<path> = 1` resolves to in a collection. */
function resolved(path: string, from = 'devices'): QueryExpr | undefined {
  const where = parseQuery(`SELECT * FROM ${from} WHERE ${path} = 1`).where;
  return where?.kind === 'compare' ? where.left : undefined;
}

function assertQueryError(text: string, position: number, message: RegExp): void {
  assert.throws(() => parseQuery(text), (err: unknown) => {
    assert.ok(err instanceof QuerySyntaxError, `not a QuerySyntaxError: ${String(err)}`);
    assert.equal(err.position, position, err.message);
    assert.match(err.message, new RegExp(`^query error at position ${position}: `));
    assert.match(err.message, message);
    return true;
  });
}

test('system names resolve to identity columns, matched case-insensitively', () => {
  const columns = ['deviceId', 'statusReason', 'status', 'statusUpdateTime', 'connectionState', 'connectionStateUpdatedTime',
    'lastActivityTime', 'authenticationType', 'modelId', 'deviceEtag', 'cloudToDeviceMessageCount', 'version'] as const;
  for (const name of columns) {
    assert.deepEqual(resolved(name), field(column(name)));
    assert.deepEqual(resolved(name.toUpperCase()), field(column(name)));
  }
});

test('statusUpdatedTime is read as statusUpdateTime', () => {
  assert.deepEqual(resolved('statusUpdatedTime'), field(column('statusUpdateTime')));
});

test('moduleId is a column of devices.modules and undefined on devices', () => {
  assert.deepEqual(resolved('moduleId', 'devices.modules'), field(column('moduleId')));
  assert.deepEqual(resolved('ModuleId'), lit(undefined));
});

test('nested system names: capabilities.iotEdge, the thumbprints and the $versions are columns', () => {
  assert.deepEqual(resolved('capabilities.iotEdge'), field(column('iotEdge')));
  assert.deepEqual(resolved('Capabilities.IotEdge'), field(column('iotEdge')));
  assert.deepEqual(resolved('x509Thumbprint.primaryThumbprint'), field(column('primaryThumbprint')));
  assert.deepEqual(resolved('X509THUMBPRINT.SecondaryThumbprint'), field(column('secondaryThumbprint')));
  assert.deepEqual(resolved('properties.desired.$version'), field(column('desiredVersion')));
  assert.deepEqual(resolved('Properties.Reported.$Version'), field(column('reportedVersion')));
});

test('tags, desired, reported and their $metadata are documents; keys inside keep their case', () => {
  assert.deepEqual(resolved('tags'), field(doc('tags')));
  assert.deepEqual(resolved('Tags.Location.Region'), field(doc('tags', 'Location', 'Region')));
  assert.deepEqual(resolved('properties.desired'), field(doc('desired')));
  assert.deepEqual(resolved('PROPERTIES.DESIRED.telemetryConfig.sendFrequency'), field(doc('desired', 'telemetryConfig', 'sendFrequency')));
  assert.deepEqual(resolved('properties.reported.Fw'), field(doc('reported', 'Fw')));
  assert.deepEqual(resolved('properties.desired.$metadata.$lastUpdated'), field(doc('desiredMeta', '$lastUpdated')));
  assert.deepEqual(resolved('properties.reported.$metadata'), field(doc('reportedMeta')));
  assert.deepEqual(resolved("properties.reported['$version']"), field(column('reportedVersion')));
  assert.deepEqual(resolved('tags.$version'), field(doc('tags', '$version')));
});

test('telemetry (Corral’s extension) reads the last-known values and their $metadata, on devices and modules', () => {
  assert.deepEqual(resolved('telemetry.temp'), field(doc('telemetry', 'temp')));
  assert.deepEqual(resolved('Telemetry.Temp.celsius', 'devices.modules'), field(doc('telemetry', 'Temp', 'celsius')));
  assert.deepEqual(resolved('telemetry'), field(doc('telemetry')));
  assert.deepEqual(resolved('telemetry.$Metadata.temp.$lastUpdated'), field(doc('telemetryMeta', 'temp', '$lastUpdated')));
  const plan = parseQuery('SELECT telemetry.temp AS t, COUNT() AS n FROM devices GROUP BY telemetry.temp');
  assert.deepEqual(plan.groupBy, [doc('telemetry', 'temp')]);
  const ordered = parseQuery('SELECT deviceId, telemetry.$metadata.temp FROM devices ORDER BY telemetry.temp DESC');
  assert.deepEqual(ordered.orderBy, [{ field: doc('telemetry', 'temp'), descending: true }]);
  assert.deepEqual(ordered.select, { kind: 'paths', items: [
    { kind: 'path', path: ['deviceId'], alias: 'deviceId' }, { kind: 'path', path: ['telemetry', '$metadata', 'temp'], alias: 'temp' }] });
  assertQueryError('SELECT * FROM devices.jobs WHERE telemetry.temp = 1', 34, /unknown attribute 'telemetry' in devices\.jobs/);
});

test('etag, bare objects and unknown names are refused, naming what is allowed', () => {
  const where = 'SELECT * FROM devices WHERE ';
  assertQueryError(`${where}foo = 1`, 29, /unknown attribute 'foo'; use deviceId, moduleId, status, .*tags\.…, properties\.desired\.… or properties\.reported\.…$/);
  assertQueryError(`${where}etag = 'x'`, 29, /'etag' cannot be queried; use version \(the twin's etag is derived from it\) or deviceEtag/);
  assertQueryError(`${where}properties = 1`, 29, /'properties' cannot be queried; use properties\.desired\.… or properties\.reported\.…/);
  assertQueryError(`${where}capabilities = 1`, 29, /'capabilities' cannot be queried; use capabilities\.iotEdge/);
  assertQueryError(`${where}x509Thumbprint = 1`, 29, /use x509Thumbprint\.primaryThumbprint or x509Thumbprint\.secondaryThumbprint/);
  assertQueryError(`${where}properties.other = 1`, 29, /unknown attribute 'properties\.other'; use properties\.desired\.… or properties\.reported\.…/);
  assertQueryError(`${where}capabilities.foo = 1`, 29, /unknown attribute 'capabilities\.foo'; use capabilities\.iotEdge/);
  assertQueryError(`${where}deviceId.x = 1`, 29, /'deviceId' is a single value; it has no member 'x'/);
  assertQueryError(`${where}properties.desired.$version.x = 1`, 29, /'properties\.desired\.\$version' is a single value/);
  assertQueryError(`${where}tags.a = 1 AND jobId = 'j'`, 44, /unknown attribute 'jobId'/);
});

test('devices.jobs reads job columns, with or without the devices.jobs. prefix', () => {
  for (const name of ['deviceId', 'jobId', 'jobType', 'status', 'createdDateTimeUtc', 'startTimeUtc', 'endTimeUtc', 'lastUpdatedDateTimeUtc'] as const) {
    assert.deepEqual(resolved(name, 'devices.jobs'), field(jobColumn(name)));
    assert.deepEqual(resolved(`devices.jobs.${name}`, 'devices.jobs'), field(jobColumn(name)));
  }
  assert.deepEqual(resolved('Devices.Jobs.JobId', 'devices.jobs'), field(jobColumn('jobId')));
});

test('devices.jobs refuses twin names and the unqueryable outcome and error', () => {
  const where = 'SELECT * FROM devices.jobs WHERE ';
  assertQueryError(`${where}tags.a = 1`, 34, /unknown attribute 'tags' in devices\.jobs; use deviceId, jobId, .*, outcome\.… or error\.…/);
  assertQueryError(`${where}devices.jobs.moduleId = 1`, 34, /unknown attribute 'moduleId' in devices\.jobs/);
  assertQueryError(`${where}outcome.x = 1`, 34, /'outcome\.x' cannot be queried; use deviceId, jobId, .* or lastUpdatedDateTimeUtc$/);
  assertQueryError(`${where}devices.jobs = 1`, 34, /unknown attribute 'devices'/);
});

test('every function, case-insensitive, with STARTS_WITH and ENDS_WITH as aliases', () => {
  const deviceId = field(column('deviceId'));
  for (const fn of ['IS_DEFINED', 'IS_NULL', 'IS_BOOL', 'IS_NUMBER', 'IS_STRING', 'IS_OBJECT', 'IS_ARRAY', 'IS_PRIMITIVE', 'LOWER', 'UPPER', 'LENGTH'] as const) {
    assert.deepEqual(parseCondition(`${fn.toLowerCase()}(deviceId)`), { kind: 'call', fn, args: [deviceId] });
  }
  for (const fn of ['STARTSWITH', 'ENDSWITH', 'CONTAINS'] as const) {
    assert.deepEqual(parseCondition(`${fn}(deviceId, 'x')`), { kind: 'call', fn, args: [deviceId, lit('x')] });
  }
  assert.deepEqual(parseCondition("starts_with(deviceId, 'x')"), { kind: 'call', fn: 'STARTSWITH', args: [deviceId, lit('x')] });
  assert.deepEqual(parseCondition("Ends_With(deviceId, 'x')"), { kind: 'call', fn: 'ENDSWITH', args: [deviceId, lit('x')] });
});

test('function calls take any expression and nest', () => {
  assert.deepEqual(parseCondition("LENGTH(LOWER(tags.name)) + 1 > 3 AND NOT IS_DEFINED(moduleId)"), {
    kind: 'and',
    left: {
      kind: 'compare', op: '>',
      left: { kind: 'arithmetic', op: '+', left: { kind: 'call', fn: 'LENGTH', args: [{ kind: 'call', fn: 'LOWER', args: [field(doc('tags', 'name'))] }] }, right: lit(1) },
      right: lit(3),
    },
    right: { kind: 'not', operand: { kind: 'call', fn: 'IS_DEFINED', args: [lit(undefined)] } },
  });
});

test('ARRAY_CONTAINS takes a field and a scalar literal', () => {
  assert.deepEqual(parseCondition("ARRAY_CONTAINS(tags.zones, 'north')"),
    { kind: 'call', fn: 'ARRAY_CONTAINS', args: [field(doc('tags', 'zones')), lit('north')] });
  assert.deepEqual(parseCondition('array_contains(properties.reported.codes, -3)'),
    { kind: 'call', fn: 'ARRAY_CONTAINS', args: [field(doc('reported', 'codes')), lit(-3)] });
  const where = 'SELECT * FROM devices WHERE ';
  assertQueryError(`${where}ARRAY_CONTAINS('x', 'x')`, 44, /ARRAY_CONTAINS takes a path as its first argument/);
  assertQueryError(`${where}ARRAY_CONTAINS(tags.z, tags.y)`, 52, /takes a string, number, true, false or null as its second argument/);
  assertQueryError(`${where}ARRAY_CONTAINS(tags.z, undefined)`, 52, /second argument/);
  assertQueryError(`${where}ARRAY_CONTAINS(moduleId, 1)`, 44, /ARRAY_CONTAINS needs a field, but 'moduleId' has no value in devices/);
});

test('unknown functions, wrong arity and aggregates in a condition are refused, naming the function', () => {
  const where = 'SELECT * FROM devices WHERE ';
  assertQueryError(`${where}FOO(deviceId)`, 29, /unknown function 'FOO'; use one of IS_DEFINED, .*STARTS_WITH, ENDS_WITH$/);
  assertQueryError(`${where}CONCAT(deviceId, 'x') = 'y'`, 29, /unknown function 'CONCAT'/);
  assertQueryError(`${where}STARTSWITH(deviceId)`, 29, /STARTSWITH takes 2 arguments, found 1/);
  assertQueryError(`${where}tags.a = 1 AND is_defined()`, 44, /IS_DEFINED takes 1 argument, found 0/);
  assertQueryError(`${where}LOWER(tags.a, tags.b) = 'x'`, 29, /LOWER takes 1 argument, found 2/);
  assertQueryError(`${where}ARRAY_CONTAINS(tags.a)`, 29, /ARRAY_CONTAINS takes 2 arguments, found 1/);
  assertQueryError(`${where}COUNT() > 1`, 29, /COUNT is an aggregate; it belongs in the select list/);
});

test('a paths select canonicalizes system names and aliases each item by its last segment', () => {
  assert.deepEqual(parseQuery('SELECT DeviceId, LastActivityTime FROM devices').select, {
    kind: 'paths',
    items: [
      { kind: 'path', path: ['deviceId'], alias: 'deviceId' },
      { kind: 'path', path: ['lastActivityTime'], alias: 'lastActivityTime' },
    ],
  });
  assert.deepEqual(parseQuery("SELECT Properties.Reported.Fw AS firmware, tags['my key'] FROM devices.modules").select, {
    kind: 'paths',
    items: [
      { kind: 'path', path: ['properties', 'reported', 'Fw'], alias: 'firmware' },
      { kind: 'path', path: ['tags', 'my key'], alias: 'my key' },
    ],
  });
});

test('a projection may read any twin path, objects and etag included', () => {
  const select = parseQuery('SELECT properties.reported, tags, etag, capabilities, x509Thumbprint, statusUpdatedTime FROM devices').select;
  assert.deepEqual(select.kind === 'paths' && select.items.map((i) => i.kind === 'path' && i.path), [
    ['properties', 'reported'], ['tags'], ['etag'], ['capabilities'], ['x509Thumbprint'], ['statusUpdateTime'],
  ]);
  assertQueryError('SELECT foo FROM devices', 8, /unknown attribute 'foo'/);
  assertQueryError('SELECT deviceId.x FROM devices', 8, /'deviceId' is a single value/);
});

test('a devices.jobs projection reads device-job names, outcome and error included', () => {
  assert.deepEqual(parseQuery('SELECT devices.jobs.jobId, outcome.deviceMethodResponse.status, Error FROM devices.jobs').select, {
    kind: 'paths',
    items: [
      { kind: 'path', path: ['jobId'], alias: 'jobId' },
      { kind: 'path', path: ['outcome', 'deviceMethodResponse', 'status'], alias: 'status' },
      { kind: 'path', path: ['error'], alias: 'error' },
    ],
  });
});

test('duplicate aliases are refused at the second one', () => {
  assertQueryError('SELECT deviceId, deviceId FROM devices', 18, /the name 'deviceId' is used twice in the select list; rename one with AS/);
  assertQueryError('SELECT tags, properties.desired.tags FROM devices', 14, /the name 'tags' is used twice/);
  assertQueryError('SELECT deviceId AS x, status AS x FROM devices', 33, /the name 'x' is used twice/);
  assertQueryError('SELECT COUNT(), COUNT() AS $1 FROM devices', 28, /the name '\$1' is used twice/);
});

test('aggregates make an aggregate select; unnamed ones are called $1, $2, … in order', () => {
  assert.deepEqual(parseQuery('SELECT COUNT(), SUM(cloudToDeviceMessageCount) AS queued, avg(properties.reported.temp), MIN(version), Max(tags.n) FROM devices'), {
    collection: 'devices',
    select: {
      kind: 'aggregate',
      items: [
        { kind: 'aggregate', aggregate: 'count', alias: '$1' },
        { kind: 'aggregate', aggregate: 'sum', field: column('cloudToDeviceMessageCount'), alias: 'queued' },
        { kind: 'aggregate', aggregate: 'avg', field: doc('reported', 'temp'), alias: '$2' },
        { kind: 'aggregate', aggregate: 'min', field: column('version'), alias: '$3' },
        { kind: 'aggregate', aggregate: 'max', field: doc('tags', 'n'), alias: '$4' },
      ],
    },
  });
});

test('GROUP BY: IoT Hub\'s example plans its grouped item and count', () => {
  assert.deepEqual(parseQuery('SELECT properties.reported.fw AS fw, COUNT() AS n FROM devices GROUP BY properties.reported.fw'), {
    collection: 'devices',
    select: {
      kind: 'aggregate',
      items: [
        { kind: 'group', field: doc('reported', 'fw'), alias: 'fw' },
        { kind: 'aggregate', aggregate: 'count', alias: 'n' },
      ],
    },
    groupBy: [doc('reported', 'fw')],
  });
});

test('GROUP BY without aggregates still groups; grouped items match however they are spelled', () => {
  assert.deepEqual(parseQuery('SELECT Status, tags.site FROM devices WHERE tags.a = 1 GROUP BY tags.site, status'), {
    collection: 'devices',
    select: {
      kind: 'aggregate',
      items: [
        { kind: 'group', field: column('status'), alias: 'status' },
        { kind: 'group', field: doc('tags', 'site'), alias: 'site' },
      ],
    },
    where: { kind: 'compare', op: '=', left: field(doc('tags', 'a')), right: lit(1) },
    groupBy: [doc('tags', 'site'), column('status')],
  });
});

test('devices.jobs may be grouped and ordered by job columns', () => {
  assert.deepEqual(parseQuery('SELECT status, COUNT() AS n FROM devices.jobs GROUP BY devices.jobs.status'), {
    collection: 'jobs',
    select: { kind: 'aggregate', items: [{ kind: 'group', field: jobColumn('status'), alias: 'status' }, { kind: 'aggregate', aggregate: 'count', alias: 'n' }] },
    groupBy: [jobColumn('status')],
  });
  assert.deepEqual(parseQuery('SELECT * FROM devices.jobs ORDER BY startTimeUtc').orderBy, [{ field: jobColumn('startTimeUtc'), descending: false }]);
});

test('aggregate selects refuse ungrouped items, SELECT * and ORDER BY', () => {
  assertQueryError('SELECT deviceId, COUNT() FROM devices', 8,
    /'deviceId' is neither in GROUP BY nor inside an aggregate; add it to GROUP BY or wrap it in COUNT, SUM, AVG, MIN or MAX/);
  assertQueryError('SELECT tags.b, COUNT() FROM devices GROUP BY tags.a', 8, /'tags\.b' is neither in GROUP BY/);
  assertQueryError('SELECT * FROM devices GROUP BY status', 8, /SELECT \* cannot be used with GROUP BY/);
  assertQueryError('SELECT COUNT() FROM devices ORDER BY status', 29, /ORDER BY cannot be used with aggregates or GROUP BY/);
  assertQueryError('SELECT status FROM devices GROUP BY status ORDER BY status', 44, /ORDER BY cannot be used with aggregates/);
});

test('GROUP BY, ORDER BY and aggregates need fields: no undefined, no bare objects, no repeats', () => {
  assertQueryError('SELECT COUNT() FROM devices GROUP BY moduleId', 38, /GROUP BY needs a field, but 'moduleId' has no value in devices \(only devices\.modules has it\)/);
  assertQueryError('SELECT * FROM devices ORDER BY moduleId', 32, /ORDER BY needs a field, but 'moduleId'/);
  assertQueryError('SELECT SUM(moduleId) FROM devices', 12, /SUM needs a field, but 'moduleId'/);
  assertQueryError('SELECT moduleId, COUNT() FROM devices', 8, /a grouped item needs a field/);
  assertQueryError('SELECT COUNT() FROM devices GROUP BY properties', 38, /'properties' cannot be queried/);
  assertQueryError('SELECT MAX(etag) FROM devices', 12, /'etag' cannot be queried/);
  assertQueryError('SELECT COUNT() FROM devices GROUP BY status, Status', 46, /'Status' appears twice in GROUP BY/);
  assertQueryError('SELECT * FROM devices ORDER BY tags.a, tags.a DESC', 40, /'tags\.a' appears twice in ORDER BY/);
  assert.deepEqual(parseQuery('SELECT COUNT() FROM devices.modules GROUP BY moduleId').groupBy, [column('moduleId')]);
});

test('of several mistakes, the first in the text is reported', () => {
  assertQueryError('SELECT foo, COUNT() FROM devices WHERE bar = 1 GROUP BY baz', 8, /unknown attribute 'foo'/);
  assertQueryError('SELECT deviceId, COUNT() FROM devices WHERE bar = 1 GROUP BY baz', 45, /unknown attribute 'bar'/);
  assertQueryError('SELECT deviceId, COUNT() FROM devices GROUP BY baz ORDER BY qux', 48, /unknown attribute 'baz'/);
});

test('a name outside ASCII is refused with a hint to use brackets, which accept it', () => {
  assertQueryError('SELECT * FROM devices WHERE tags.café = 1', 37, /found the character 'é' \(names use only A-Z, .* as in tags\['é'\]\)/);
  assert.deepEqual(resolved("tags['café']"), field(doc('tags', 'café')));
});

test('a plan is frozen all the way down', () => {
  const plan = parseQuery("SELECT deviceId FROM devices WHERE tags.a IN ['x'] ORDER BY deviceId");
  assert.ok(Object.isFrozen(plan));
  assert.ok(Object.isFrozen(plan.select));
  assert.ok(plan.where?.kind === 'in' && Object.isFrozen(plan.where.values));
  assert.ok(Object.isFrozen(plan.orderBy?.[0].field));
  assert.ok(Object.isFrozen(parseCondition('tags.a.b = 1')));
});
