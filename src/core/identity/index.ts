export { Registry, MAX_LIST, checkKey, type RegistryDeps } from './registry.js';
export { BulkRegistry, MAX_BULK, type BulkResult, type BulkError, type ImportMode } from './bulk.js';
export { RegistryTransfer, exportRecord, type ImportReport, type ImportLineError } from './transfer.js';
export { parseIdentitySpec, type IdentitySpec } from './spec.js';
export { validateDeviceId, validateModuleId } from './ids.js';
export { deviceView, moduleView, identityView } from './views.js';
export { NEVER } from './records.js';
