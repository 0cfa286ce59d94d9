/** The lab's public surface for tests, benchmarks and `clatd lab`. */

export { CLI_PATH } from './clatd.js';
export { IPV4ONLY_ZONE, LAB_ZONE, radvdConf, taygaConf, unboundConf } from './configs.js';
export { ensureDeps, LAB_TOOLS, missingTools, which } from './deps.js';
export { type DhcpLease, duidLl, parseDnsmasqLeases } from './dhcp.js';
export { CHILD_ENV, LabError, Proc, run, sleep, waitFor } from './exec.js';
export { Capture, Lab } from './lab.js';
export {
  type Frame,
  ipv6OfFrame,
  type NdMessage,
  ndOfFrame,
  parsePcap,
  type RouterAdvert,
  raOfFrame,
  solicitedNodeOf,
} from './pcap.js';
export { destroyKeptLab, keptLabs, runDir } from './state.js';
export { type CounterSummary, parseStatus, summarize } from './status.js';
export {
  ADDR,
  IFACE,
  type LabNames,
  type LabOptions,
  NS_PREFIX,
  UPLINK_SHAPES,
  type UplinkShape,
  usesDhcpv6,
} from './topology.js';
