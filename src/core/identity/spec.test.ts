import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ArgumentInvalid } from '../errors/index.js';
import { validateDeviceId, validateModuleId } from './ids.js';
import { parseIdentitySpec } from './spec.js';
import { assertArgumentInvalid } from '../../../test/support/assertions.js';

const SHA1 = 'ab'.repeat(20);
const SHA256 = 'CD'.repeat(32);
const KEY = randomBytes(32).toString('base64');

test('a device id of 128 characters is accepted and one of 129 is rejected naming the limit', () => {
  assert.equal(validateDeviceId('d'.repeat(128)), 'd'.repeat(128));
  assertArgumentInvalid(() => validateDeviceId('d'.repeat(129)), /device id/, /129/, /128/);
});

test('device ids may use letters, digits and - . % _ * ? ! ( ) , : = @ $ \'', () => {
  for (const id of ['Dev-1', 'a.b', '50%', 'under_score', 'star*', 'what?', 'bang!', '(paren)', 'a,b', 'c:d', 'e=f', 'me@home', '$cash', "it's"]) {
    assert.equal(validateDeviceId(id), id);
  }
  assert.equal(validateDeviceId("-.%_*?!(),:=@$'"), "-.%_*?!(),:=@$'");
});

test('device ids with + # / space or non-ASCII characters are rejected naming the allowed set', () => {
  for (const id of ['a+b', 'a#b', 'a/b', 'a b', 'café', 'ﬁle', 'a\u0000b', 'tab\t', '😀']) {
    assertArgumentInvalid(() => validateDeviceId(id), /device id/, /outside IoT Hub's set/, /ASCII letters, digits/);
  }
});

test('a missing, empty or non-string device id is rejected', () => {
  for (const id of [undefined, null, '', 42, {}]) assertArgumentInvalid(() => validateDeviceId(id), /device id is missing or empty/);
});

test('module ids follow the device id rules and say they are module ids', () => {
  assert.equal(validateModuleId('m'.repeat(128)), 'm'.repeat(128));
  assertArgumentInvalid(() => validateModuleId('m'.repeat(129)), /module id/, /128/);
  assertArgumentInvalid(() => validateModuleId('m/1'), /module id/);
});

test('an empty spec means an enabled-by-default SAS identity with keys to generate', () => {
  const spec = parseIdentitySpec({});
  assert.equal(spec.authType, 'sas');
  assert.equal(spec.status, undefined);
  assert.equal(spec.primaryKey, undefined);
  assert.equal(spec.secondaryKey, undefined);
  assert.equal(spec.primaryThumbprint, null);
  assert.equal(spec.secondaryThumbprint, null);
});

test('empty or null keys mean "generate" (undefined)', () => {
  const spec = parseIdentitySpec({ authentication: { type: 'sas', symmetricKey: { primaryKey: '', secondaryKey: null } } });
  assert.equal(spec.primaryKey, undefined);
  assert.equal(spec.secondaryKey, undefined);
});

test('given symmetric keys are kept as written', () => {
  const spec = parseIdentitySpec({ authentication: { symmetricKey: { primaryKey: KEY, secondaryKey: randomBytes(16).toString('base64') } } });
  assert.equal(spec.primaryKey, KEY);
  assert.equal(Buffer.from(spec.secondaryKey ?? '', 'base64').length, 16);
});

test('keys that are not base64, shorter than 16 or longer than 64 bytes are rejected naming the field', () => {
  for (const bad of ['not base64!!', randomBytes(15).toString('base64'), randomBytes(65).toString('base64'), 'abc']) {
    assertArgumentInvalid(
      () => parseIdentitySpec({ authentication: { symmetricKey: { primaryKey: bad } } }),
      /authentication\.symmetricKey\.primaryKey/, /16 to 64 bytes/,
    );
  }
  assertArgumentInvalid(() => parseIdentitySpec({ authentication: { symmetricKey: { secondaryKey: 17 } } }), /secondaryKey must be a string/);
});

test('the auth type is inferred as selfSigned from thumbprints', () => {
  const spec = parseIdentitySpec({ authentication: { x509Thumbprint: { primaryThumbprint: SHA1, secondaryThumbprint: SHA256 } } });
  assert.equal(spec.authType, 'selfSigned');
  assert.equal(spec.primaryThumbprint, SHA1.toUpperCase());
  assert.equal(spec.secondaryThumbprint, SHA256);
});

test('explicit auth types are read without regard to case', () => {
  const cases: [string, string][] = [
    ['SAS', 'sas'], ['sas', 'sas'], ['SelfSigned', 'selfSigned'], ['SELFSIGNED', 'selfSigned'],
    ['certificateAuthority', 'certificateAuthority'], ['CertificateAuthority', 'certificateAuthority'], ['None', 'none'],
  ];
  for (const [type, expected] of cases) {
    const spec = parseIdentitySpec({ authentication: { type, x509Thumbprint: { primaryThumbprint: SHA1 } } });
    assert.equal(spec.authType, expected, type);
  }
});

test('an unknown auth type is rejected listing the allowed ones', () => {
  for (const type of ['x509', '', 3]) {
    assertArgumentInvalid(() => parseIdentitySpec({ authentication: { type } }), /authentication\.type/, /sas, selfSigned, certificateAuthority or none/);
  }
});

test('selfSigned without any thumbprint is rejected', () => {
  assertArgumentInvalid(() => parseIdentitySpec({ authentication: { type: 'selfSigned' } }), /selfSigned needs/);
});

test('thumbprints must be 40 or 64 hex digits', () => {
  for (const bad of ['ab'.repeat(19), 'ab'.repeat(21), 'ab'.repeat(31) + 'a', 'zz'.repeat(20), 'ab'.repeat(33)]) {
    assertArgumentInvalid(
      () => parseIdentitySpec({ authentication: { x509Thumbprint: { primaryThumbprint: bad } } }),
      /primaryThumbprint/, /40/, /64/,
    );
  }
});

test('authentication and its parts must be objects', () => {
  assertArgumentInvalid(() => parseIdentitySpec({ authentication: 'sas' }), /authentication must be an object/);
  assertArgumentInvalid(() => parseIdentitySpec({ authentication: { symmetricKey: [] } }), /symmetricKey must be an object/);
  assertArgumentInvalid(() => parseIdentitySpec({ authentication: { x509Thumbprint: 'x' } }), /x509Thumbprint must be an object/);
});

test('status must be enabled or disabled', () => {
  assert.equal(parseIdentitySpec({ status: 'enabled' }).status, 'enabled');
  assert.equal(parseIdentitySpec({ status: 'disabled' }).status, 'disabled');
  for (const bad of ['on', 'Enabledx', '', true]) {
    assertArgumentInvalid(() => parseIdentitySpec({ status: bad }), /status must be 'enabled' or 'disabled'/);
  }
});

test('statusReason, capabilities, scopes and managedBy are read and checked', () => {
  const spec = parseIdentitySpec({
    statusReason: 'maintenance', capabilities: { iotEdge: true }, deviceScope: 'ms-azure-iot-edge://e-1',
    parentScopes: ['ms-azure-iot-edge://e-1'], managedBy: 'iotEdge',
  });
  assert.equal(spec.statusReason, 'maintenance');
  assert.equal(spec.iotEdge, true);
  assert.equal(spec.deviceScope, 'ms-azure-iot-edge://e-1');
  assert.deepEqual(spec.parentScopes, ['ms-azure-iot-edge://e-1']);
  assert.equal(spec.managedBy, 'iotEdge');
  assertArgumentInvalid(() => parseIdentitySpec({ statusReason: 'r'.repeat(129) }), /statusReason/);
  assertArgumentInvalid(() => parseIdentitySpec({ capabilities: { iotEdge: 'yes' } }), /capabilities\.iotEdge/);
  assertArgumentInvalid(() => parseIdentitySpec({ parentScopes: 'x' }), /parentScopes/);
  assertArgumentInvalid(() => parseIdentitySpec({ deviceScope: 5 }), /deviceScope must be a string/);
});

test('a body that is not an object is rejected', () => {
  for (const body of [null, [], 'device', 1]) assertArgumentInvalid(() => parseIdentitySpec(body), /the body must be a JSON object/);
});
