export {
  CaCertificateExists, CaCertificateNotFound, CaCertificates, type CaCertificate,
} from './ca-certificates.js';
export { checkDeviceChain, type ChainCheck } from './chain.js';
export { thumbprintsOf, validityProblem } from './x509.js';
