/**
 * The query conformance table: IoT Hub query text → the rows expected, run on both stores (conformance.test.ts) and
 * its conditions evaluated in memory (evaluate.test.ts). The registry is the Store's query contract seed
 * (src/ports/store/contract-query-data.ts): d01–d16 carry `tags.v` of every JSON type
 * (10, '10', true, false, null, –, {x:10}, [10], 0, 'abc', 5.5, -3, '', 'ABC', 10, 'abc'), d17–d28 arrays, nested
 * objects and strings, d29–d34 awkward keys and values; six modules; two jobs with device rows; and the last-known
 * telemetry of d01–d05 and two modules (TELEMETRY there).
 */
export const ID_CASES: readonly (readonly [string, readonly string[]])[] = [
  // comparisons only between values of one JSON type
  ["SELECT * FROM devices WHERE tags.v = 10", ['d01', 'd15']],
  ["SELECT * FROM devices WHERE tags.v = '10'", ['d02']],
  ['SELECT * FROM devices WHERE tags.v > 5', ['d01', 'd11', 'd15']],
  ['SELECT * FROM devices WHERE tags.v != 10', ['d09', 'd11', 'd12']],
  ["SELECT * FROM devices WHERE tags.v <> 'abc'", ['d02', 'd13', 'd14']],
  ['SELECT * FROM devices WHERE tags.v = true', ['d03']],
  ['SELECT * FROM devices WHERE tags.v = null', ['d05']],
  ["SELECT * FROM devices WHERE tags.v >= 'a'", ['d10', 'd16']],
  // three-valued logic
  ["SELECT * FROM devices WHERE tags.g = 'zoo' AND NOT (tags.v = 10)", ['d09', 'd11', 'd12']],
  ["SELECT * FROM devices WHERE tags.v = 10 OR tags.v = 'abc'", ['d01', 'd10', 'd15', 'd16']],
  ["SELECT * FROM devices WHERE NOT (tags.v = 10 OR tags.v < 1)", ['d11']],
  ["SELECT * FROM devices WHERE (tags.v = 10 AND tags.g = 'zoo') OR deviceId = 'd30'", ['d01', 'd15', 'd30']],
  // IN and NIN
  ["SELECT * FROM devices WHERE tags.v IN [10, 'abc']", ['d01', 'd10', 'd15', 'd16']],
  ['SELECT * FROM devices WHERE tags.v NIN [10, 0]', ['d11', 'd12']],
  ["SELECT * FROM devices WHERE deviceId IN ['d02', 'd07', 'nope']", ['d02', 'd07']],
  // type functions
  ["SELECT * FROM devices WHERE tags.g = 'zoo' AND NOT IS_DEFINED(tags.v)", ['d06']],
  ['SELECT * FROM devices WHERE IS_NULL(tags.v)', ['d05']],
  ['SELECT * FROM devices WHERE IS_BOOL(tags.v)', ['d03', 'd04']],
  ['SELECT * FROM devices WHERE IS_NUMBER(tags.v)', ['d01', 'd09', 'd11', 'd12', 'd15']],
  ['SELECT * FROM devices WHERE is_string(tags.v)', ['d02', 'd10', 'd13', 'd14', 'd16']],
  ['SELECT * FROM devices WHERE IS_OBJECT(tags.v)', ['d07']],
  ['SELECT * FROM devices WHERE IS_ARRAY(tags.v)', ['d08']],
  ["SELECT * FROM devices WHERE tags.g = 'zoo' AND NOT IS_PRIMITIVE(tags.v)", ['d06', 'd07', 'd08']],
  // string and array functions
  ["SELECT * FROM devices WHERE STARTSWITH(tags.s, 'he')", ['d24', 'd26']],
  ["SELECT * FROM devices WHERE ENDS_WITH(tags.s, 'LLO')", ['d25']],
  ["SELECT * FROM devices WHERE CONTAINS(tags.s, '%_')", ['d27']],
  ['SELECT * FROM devices WHERE LENGTH(tags.s) = 4', ['d26']],
  ["SELECT * FROM devices WHERE ARRAY_CONTAINS(tags.arr, 'two')", ['d17']],
  ['SELECT * FROM devices WHERE ARRAY_CONTAINS(tags.arr, 1)', ['d17', 'd22']],
  ["SELECT * FROM devices WHERE LOWER(tags.loc.city) = 'paris'", ['d17', 'd18']],
  // arithmetic
  ['SELECT * FROM devices WHERE tags.v * 2 = 20', ['d01', 'd15']],
  ['SELECT * FROM devices WHERE tags.v + 3 = 0', ['d12']],
  // columns and property documents
  ["SELECT * FROM devices WHERE status = 'disabled'", ['d05', 'd09']],
  ["SELECT * FROM devices WHERE connectionState = 'Connected'", ['d01', 'd02', 'd11']],
  ['SELECT * FROM devices WHERE capabilities.iotEdge = true', ['d04', 'd10']],
  ["SELECT * FROM devices WHERE lastActivityTime >= '2026-04-01T00:00:00Z'", ['d01', 'd02']],
  ["SELECT * FROM devices WHERE authenticationType = 'selfSigned' AND x509Thumbprint.primaryThumbprint = 'AAA'", ['d12']],
  ['SELECT * FROM devices WHERE version = 7 AND properties.desired.$version = 4', ['d03']],
  ["SELECT * FROM devices WHERE properties.reported.fw = '1.0'", ['d01', 'd02', 'd03']],
  ['SELECT * FROM devices WHERE properties.reported.temp >= 24', ['d03', 'd05']],
  ["SELECT * FROM devices WHERE properties.desired.mode = 'eco'", ['d01', 'd02']],
  ["SELECT * FROM devices WHERE properties.reported.$metadata.fw.$lastUpdated = '2026-02-01T00:00:00Z'", ['d01']],
  ['SELECT * FROM devices WHERE cloudToDeviceMessageCount > 0', ['d01', 'd02']],
  // paths and values that look like SQL are data
  ["SELECT * FROM devices WHERE tags['a.b'] = 1", ['d29']],
  ['SELECT * FROM devices WHERE tags.a.b = 2', ['d30']],
  ["SELECT * FROM devices WHERE tags.name = \"'; DROP TABLE identities; --\"", ['d31']],
  ["SELECT * FROM devices WHERE tags.name IN ['\"', '$1', '?']", ['d32', 'd33', 'd34']],
  // modules
  ["SELECT * FROM devices.modules WHERE tags.role = 'sensor'", ['d01/m1', 'd02/mA']],
  ["SELECT * FROM devices.modules WHERE moduleId = 'm1'", ['d01/m1', 'd10/m1', 'd20/m1']],
  ["SELECT * FROM devices.modules WHERE deviceId = 'd10' AND status = 'disabled'", ['d10/m2']],
  // telemetry (Corral's extension): a device without telemetry has every telemetry path undefined
  ['SELECT * FROM devices WHERE telemetry.temp > 22', ['d02', 'd04']],
  ["SELECT * FROM devices WHERE telemetry.temp > 22 OR telemetry.temp = '31'", ['d02', 'd03', 'd04']],
  ['SELECT * FROM devices WHERE IS_DEFINED(telemetry)', ['d01', 'd02', 'd03', 'd04', 'd05']],
  ["SELECT * FROM devices WHERE tags.g = 'zoo' AND NOT IS_DEFINED(telemetry.temp)", [
    'd05', 'd06', 'd07', 'd08', 'd09', 'd10', 'd11', 'd12', 'd13', 'd14', 'd15', 'd16']],
  ["SELECT * FROM devices WHERE Telemetry.on = false AND status = 'enabled'", ['d02']],
  ["SELECT * FROM devices WHERE ARRAY_CONTAINS(telemetry.arr, 'two') AND telemetry.pos.x = 1", ['d01']],
  ["SELECT * FROM devices WHERE IS_NULL(telemetry.fw) OR STARTSWITH(telemetry.s, 'He')", ['d03', 'd04']],
  ["SELECT * FROM devices WHERE telemetry.$metadata.temp.$lastUpdated >= '2026-04-01'", ['d02']],
  ['SELECT * FROM devices.modules WHERE telemetry.temp >= 5', ['d01/m1', 'd10/m1']],
];

/** Rows in the order the query gives them (ORDER BY, GROUP BY keys, jobs), projected or aggregated. */
export const ROW_CASES: readonly (readonly [string, readonly unknown[]])[] = [
  ["SELECT deviceId, tags.v AS v FROM devices WHERE tags.v = 10", [{ deviceId: 'd01', v: 10 }, { deviceId: 'd15', v: 10 }]],
  ['SELECT TOP 3 deviceId FROM devices WHERE IS_NUMBER(tags.v) ORDER BY tags.v DESC', [{ deviceId: 'd01' }, { deviceId: 'd15' }, { deviceId: 'd11' }]],
  ['SELECT deviceId FROM devices WHERE IS_NUMBER(tags.v) ORDER BY tags.v', [
    { deviceId: 'd12' }, { deviceId: 'd09' }, { deviceId: 'd11' }, { deviceId: 'd01' }, { deviceId: 'd15' }]],
  ["SELECT COUNT() AS n FROM devices WHERE tags.g = 'zoo'", [{ n: 16 }]],
  ['SELECT properties.reported.fw AS fw, COUNT() AS n FROM devices WHERE IS_DEFINED(properties.reported.fw) GROUP BY properties.reported.fw', [
    { fw: null, n: 1 }, { fw: true, n: 1 }, { fw: 2, n: 1 }, { fw: '1.0', n: 3 }, { fw: '2.0', n: 2 }]],
  ["SELECT status, COUNT() AS n, MAX(tags.v) AS highest FROM devices WHERE tags.g = 'zoo' GROUP BY status", [
    { status: 'disabled', n: 2, highest: 0 }, { status: 'enabled', n: 14, highest: 10 }]],
  ["SELECT deviceId, status FROM devices.jobs WHERE devices.jobs.jobId = 'j1'", [
    { deviceId: 'd01', status: 'completed' }, { deviceId: 'd02', status: 'failed' }, { deviceId: 'd03', status: 'running' }, { deviceId: 'd04', status: 'pending' }]],
  ["SELECT deviceId, jobId FROM devices.jobs WHERE status = 'pending'", [
    { deviceId: 'd04', jobId: 'j1' }, { deviceId: 'd05', jobId: 'j2' }, { deviceId: 'd10', jobId: 'j2' }]],
  // telemetry: projected, ordered (undefined < number < string), grouped and aggregated
  ['SELECT deviceId, telemetry.temp AS temp FROM devices WHERE IS_DEFINED(telemetry) ORDER BY telemetry.temp DESC', [
    { deviceId: 'd03', temp: '31' }, { deviceId: 'd02', temp: 30 }, { deviceId: 'd04', temp: 25 }, { deviceId: 'd01', temp: 21.5 },
    { deviceId: 'd05' }]],
  ['SELECT telemetry.fw AS fw, COUNT() AS n FROM devices WHERE IS_DEFINED(telemetry) GROUP BY telemetry.fw', [
    { n: 2 }, { fw: null, n: 1 }, { fw: '1.0', n: 1 }, { fw: '2.0', n: 1 }]],
  ['SELECT AVG(telemetry.temp) AS avg, MAX(telemetry.temp) AS max, COUNT() AS n FROM devices', [{ avg: 25.5, max: 30, n: 34 }]],
  ["SELECT deviceId, telemetry.$metadata.temp.$lastUpdated AS at, telemetry FROM devices WHERE deviceId IN ['d02', 'd06']", [
    {
      deviceId: 'd02', at: '2026-04-01T00:00:00.000Z', telemetry: {
        temp: 30, fw: '2.0', on: false,
        $metadata: { temp: { $lastUpdated: '2026-04-01T00:00:00.000Z' }, fw: { $lastUpdated: '2026-04-01T00:00:00.000Z' }, on: { $lastUpdated: '2026-04-01T00:00:00.000Z' } },
      },
    },
    { deviceId: 'd06' }]],
  ['SELECT deviceId, moduleId, telemetry.temp FROM devices.modules WHERE IS_DEFINED(telemetry.temp)', [
    { deviceId: 'd01', moduleId: 'm1', temp: 5 }, { deviceId: 'd10', moduleId: 'm1', temp: 40 }]],
];

